"""The Call Center definition file an admin imports into Salesforce (Setup > Call Centers).

It tells Salesforce where the softphone page lives (``reqAdapterUrl``) and that the page
uses Open CTI in Lightning Experience. Built with ElementTree so every value is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from callbridge import ConfigurationError

from .settings import ENV_PREFIX, SalesforceSettings
from .softphone import PAGE_PATH

#: Where callbridge mounts a plugin's routes.
PLUGIN_PREFIX = "/plugins/salesforce"


def adapter_url(public_url: str) -> str:
    """The softphone page's public address."""
    return public_url.rstrip("/") + PLUGIN_PREFIX + PAGE_PATH


def call_center_xml(settings: SalesforceSettings, public_url: str | None = None) -> str:
    """The ``<callCenter>`` document, pointing at the softphone page under ``public_url``."""
    base = public_url or settings.public_url
    if not base:
        raise ConfigurationError(
            f"{ENV_PREFIX}PUBLIC_URL is not set: the address where Salesforce reaches "
            "callbridge, e.g. https://callbridge.example.com (or pass --public-url)"
        )
    if not base.startswith("https://"):
        raise ConfigurationError(
            f"{ENV_PREFIX}PUBLIC_URL must be an https:// address (Salesforce frames only HTTPS)"
        )
    items = [
        ("reqInternalName", "InternalName", settings.call_center_name),
        ("reqDisplayName", "Display Name", settings.call_center_display_name),
        ("reqAdapterUrl", "CTI Adapter URL", adapter_url(base)),
        ("reqUseApi", "Use CTI API", "true"),
        ("reqSoftphoneHeight", "Softphone Height", str(settings.softphone_height)),
        ("reqSoftphoneWidth", "Softphone Width", str(settings.softphone_width)),
        ("reqSalesforceCompatibilityMode", "Salesforce Compatibility Mode", "Lightning"),
    ]
    root = ET.Element("callCenter")
    section = ET.SubElement(
        root, "section", {"sortOrder": "0", "name": "reqGeneralInfo", "label": "General Info"}
    )
    for order, (name, label, value) in enumerate(items):
        attributes = {"sortOrder": str(order), "name": name, "label": label}
        item = ET.SubElement(section, "item", attributes)
        item.text = value
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
