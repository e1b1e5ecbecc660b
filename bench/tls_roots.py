"""Item 1's CA store row: what the trusted roots cost a cold start.

The functions trust Mozilla's roots compiled into the binary
(shared/aws/src/adapters/tls.rs) unless `SSL_CERT_FILE` / `SSL_CERT_DIR`
name a CA store, which is then read from disk at init, as every function
did before. on-upload is started both ways, and its init (spawn → polling
/next, which includes the config read over the SDK) compared.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from demo import DATA_BUCKET
from events import upload_batch
from functions import TimedFunction, function_env

# Where a Debian/Ubuntu or Amazon Linux host keeps its CA bundle and directory.
BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]
DIRS = ["/etc/ssl/certs", "/etc/pki/tls/certs"]


def platform_store() -> dict[str, str]:
    """The environment that makes a function read the host's CA store."""
    found = {
        "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE") or next((b for b in BUNDLES if Path(b).is_file()), ""),
        "SSL_CERT_DIR": os.environ.get("SSL_CERT_DIR") or next((d for d in DIRS if Path(d).is_dir()), ""),
    }
    return {k: v for k, v in found.items() if v}


def store_files(store: dict[str, str]) -> int:
    files = 1 if Path(store.get("SSL_CERT_FILE", "")).is_file() else 0
    cert_dir = Path(store.get("SSL_CERT_DIR", "/nonexistent"))
    return files + (sum(1 for p in cert_dir.iterdir() if p.is_file()) if cert_dir.is_dir() else 0)


def measure(bench: Any) -> None:
    """Cold starts of on-upload reading the host's CA store (the first, unrecorded, warms the page cache)."""
    store = platform_store()
    if not store:
        bench.results["tls_roots"] = {"store": {}, "ready_ms": []}
        return
    proxy = bench.proxy("on-upload")
    ready: list[float] = []
    for rep in range(bench.reps + 1):
        bench.settle()
        env = {**function_env(proxy.url, bench.world), **store}
        fn = TimedFunction("retrain-on-upload", bench.bin_dir / "on-upload", env, bench.log_dir / "on-upload-platform-roots.log")
        try:
            fn.start()
            fn.invoke(upload_batch(DATA_BUCKET, f"bench-{bench.nonce}-roots{rep}", 10))
        finally:
            fn.stop()
        if rep:
            ready.append((fn.ready_after or 0.0) * 1000.0)
    bench.results["tls_roots"] = {"store": store, "files": store_files(store), "ready_ms": ready}
    bench.note(f"on-upload init with the host's CA store ({', '.join(store.values())}): {statistics.median(ready):.1f} ms")


def rows(results: dict[str, Any]) -> list[list[str]]:
    roots = results.get("tls_roots")
    cold = results.get("cold", {}).get("on-upload")
    if not roots or not cold:
        return []
    if not roots["ready_ms"]:
        return [["1", "on-upload init, host CA store → compiled-in roots", "-", "no CA store on this host", "", ""]]
    host = statistics.median(roots["ready_ms"])
    compiled = statistics.median([s["ready_ms"] for s in cold])
    return [
        ["1", "on-upload init, host CA store → compiled-in roots", f"{host:.1f} → {compiled:.1f} ms",
         f"{compiled - host:+.1f} ms; store: {roots['files']} files", "", ""],
    ]  # fmt: skip
