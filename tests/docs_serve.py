"""Run a documented `vstore serve ...` command as the docs-example runner does (tests/docs_examples.py):
on a free port (`--port 0` appended: the last --port wins), until GET /health answers 200, then stop it
with SIGINT (Ctrl-C, as the docs say) and expect a clean exit. Exit 1, with the server's stderr, when it
never answers or exits on its own.

Usage: python tests/docs_serve.py vstore serve [OPTIONS...]"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request

READY_S = 300  # a model load on a busy 2-core machine; a bound, not a measurement


def main(argv: list[str]) -> int:
    command = [*argv, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    address: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            found = re.search(r"serving (http://[\d.]+:\d+/)", line)
            if found and not address:
                address.append(found.group(1).replace("0.0.0.0", "127.0.0.1"))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(READY_S)
        if not address:
            print(f"{' '.join(argv)}: no address within {READY_S} s", file=sys.stderr)
            return 1
        with urllib.request.urlopen(address[0] + "health", timeout=60) as response:
            health = json.load(response)
        print(f"{' '.join(argv)}: {address[0]}health -> {response.status} {health}", file=sys.stderr)
    except OSError as exc:
        print(f"{' '.join(argv)}: {exc}", file=sys.stderr)
        return 1
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        sys.stderr.write("".join(lines))
    return 0 if process.returncode in (0, -signal.SIGINT, 130) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
