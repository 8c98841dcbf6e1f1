"""Each company has its own PBX client and connector clients; they share one TLS context, so
a company costs no CA bundle of its own (about 0.9 MB each before: ``bench/companies.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: Made in a fresh process, so nothing else in it moves its resident memory.
SCRIPT = textwrap.dedent(
    """
    import os
    from pydantic import SecretStr

    from callbridge.plugins.builtin.webhook import WebhookPlugin, WebhookSettings
    from callbridge.settings import PbxSettings
    from callbridge.voispeed.soap import pbx_http_client

    def rss_kib():
        with open(f"/proc/{os.getpid()}/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmRSS"))

    def one_company(n):
        plugin = WebhookPlugin()
        plugin.configure(
            WebhookSettings(urls=[f"https://crm{n}.example/hook"], secret=SecretStr("s" * 20))
        )
        return plugin, pbx_http_client(PbxSettings())

    kept = [one_company(0)]  # the first pays for the shared context and the imports
    before = rss_kib()
    kept += [one_company(n) for n in range(1, 31)]
    print((rss_kib() - before) / 30)
    """
)


def test_thirty_companies_clients_cost_far_less_than_a_ca_bundle_each() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    per_company_kib = float(done.stdout.strip())
    # Two clients per company with their own contexts cost about 1,900 KiB.
    assert per_company_kib < 300, per_company_kib
