"""What signing a Xurrent webhook delivery costs, per `jwt_alg`, in process.

A webhook linked to a policy is signed at send time, in the sender's claim (the dialect's
`finalize`), one JWS per delivery and per retry: this is the CPU a worker spends per signed
delivery on top of sending it. Also prints what making a policy's key pair costs (once, on
POST /v1/webhook_policies).

Run: .venv/bin/python bench/webhook_signing.py [--iterations 2000]
"""

import argparse
import platform
import statistics
import time

from landmark.webhooks import policies
from landmark.webhooks.policies import ALGORITHMS, WebhookPolicy

DATA = {
    "webhook_id": 1,
    "webhook_nodeID": "bG9jYWxob3N0L1dlYmhvb2svMQ",
    "account_id": "wdc",
    "account": "https://landmark.example/accounts/wdc",
    "name": "ci.update",
    "event": "ci.update",
    "object_id": 4711,
    "person_id": 6,
    "person_name": "Howard Tanner",
    "payload": {"audit_line_id": 48289},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {args.iterations} signatures per algorithm")
    for alg in ALGORITHMS:
        started = time.perf_counter()
        private_pem, _ = policies.generate(alg)
        keygen_ms = (time.perf_counter() - started) * 1000
        policy = WebhookPolicy(
            jwt_alg=alg, private_pem=private_pem, jwt_audience="bench", jwt_claim_expires_in=300
        )
        policies.sign(policy, DATA, DATA["account"], "1")  # the parsed key is cached from here
        times = []
        for _ in range(args.iterations):
            started = time.perf_counter()
            policies.sign(policy, DATA, DATA["account"], "1")
            times.append(time.perf_counter() - started)
        median = statistics.median(times) * 1e6
        p99 = statistics.quantiles(times, n=100)[98] * 1e6
        print(
            f"{alg}: sign median {median:.0f} µs, p99 {p99:.0f} µs "
            f"(~{1e6 / median:.0f}/s per core); key pair {keygen_ms:.0f} ms"
        )


if __name__ == "__main__":
    main()
