"""App and group definitions as users write them, and their validation (pure).

    Marathon JSON --app_definition.normalise--> App | [Problem]    (app_fields, app_checks, app_ports read it)
    group JSON    --group_definitions.parse_group--> GroupSpec | GroupError
    app_ids: path ids, task ids and their names
"""
