"""``meseta dns``: Mesos-DNS names served live from the master's operator event stream.

    names   sanitising, T-H-S labels          wire     operator events -> typed facts
    book    the records, updated per event    answer   query -> response (pure)
    views   HTTP API documents                options  settings; flags: the CLI's parsing
    feed    the event stream -> book          server   UDP/TCP DNS    http  HTTP API   daemon  all on one loop
"""

from meseta.discovery.dns.answer import AnswerConfig
from meseta.discovery.dns.book import BookConfig, RecordBook
from meseta.discovery.dns.options import DnsOptions

__all__ = ["AnswerConfig", "BookConfig", "DnsOptions", "RecordBook"]
