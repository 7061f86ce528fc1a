"""Deployments (pure): the group tree, its versions, deployment plans and each app's next step.

    groups (RootGroup: apps and groups by path) --deployments.plan--> DeploymentPlan (steps of Actions)
    app_step.step_app(action, app, instances, now) -> AppStep (launch, kill, done?)
    readiness: the probes a step waits on and what their answers mean; group_versions: GET .../versions
"""
