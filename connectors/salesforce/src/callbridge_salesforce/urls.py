"""Links into the Salesforce UI, derived from the org's API host.

The API lives on ``acme.my.salesforce.com``; Lightning pages on ``acme.lightning.force.com``.
Sandboxes and other My Domain flavours keep their middle part
(``acme--uat.sandbox.my.salesforce.com`` -> ``acme--uat.sandbox.lightning.force.com``). An
instance without My Domain (``na1.salesforce.com``) redirects ``/lightning/...`` itself.
"""

from __future__ import annotations

from urllib.parse import quote

_MY_DOMAIN = ".my.salesforce.com"


def lightning_base(instance: str) -> str:
    """``https://<domain>.lightning.force.com`` for an API host ``<domain>.my.salesforce.com``."""
    host = instance.removeprefix("https://").removeprefix("http://").split("/")[0].lower()
    if host.endswith(_MY_DOMAIN):
        return f"https://{host[: -len(_MY_DOMAIN)]}.lightning.force.com"
    return f"https://{host}"


def record_url(base: str, object_name: str, record_id: str) -> str:
    """``<base>/lightning/r/<Object>/<Id>/view``."""
    return f"{base.rstrip('/')}/lightning/r/{quote(object_name)}/{quote(record_id)}/view"


def visualforce_base(instance: str) -> str:
    """The org's Visualforce domain (``https://acme--c.vf.force.com``), which serves Open CTI.

    Salesforce documents ``https://MyDomainName--PackageName.vf.force.com`` for pages hosted
    on a third-party domain; ``c`` is the package name of an org's own (unpackaged) code.
    """
    host = instance.removeprefix("https://").removeprefix("http://").split("/")[0].lower()
    if host.endswith(_MY_DOMAIN):
        name, _, middle = host[: -len(_MY_DOMAIN)].partition(".")
        return f"https://{name}--c.{middle + '.' if middle else ''}vf.force.com"
    return f"https://{host}"


def opencti_script_url(instance: str, api_version: str) -> str:
    """Where the org serves Open CTI for Lightning Experience."""
    base = visualforce_base(instance)
    return f"{base}/support/api/{api_version}/lightning/opencti_min.js"
