#!/usr/bin/env bash
# The node runtime's share of the armv6m (Embedded Swift, -Osize) TDOSCore
# object, by component: scheduler, subscriptions, config, metrics, rate
# limiter (issue 7's "size in flash of the runtime"). Object-level sizes: code
# and constants of each component's symbols before the firmware link's
# --gc-sections, so an upper bound of what an image keeps. Builds the object
# with scripts/embedded-check.sh when it is missing or older than the sources.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
obj=.build-embedded/TDOSCore.o
if [[ ! -f $obj ]] || [[ -n $(find Firmware/Core -name '*.swift' -newer "$obj" | head -1) ]]; then
    echo "runtime-size: building the armv6m objects (scripts/embedded-check.sh)" >&2
    scripts/embedded-check.sh >/dev/null
fi
tool=runtime-size
source scripts/armv6m-swift.sh
demangle="$(dirname "$swiftc")/swift-demangle"
arm-none-eabi-nm -S --size-sort "$obj" | awk 'NF == 4 && $3 ~ /[TtRrDd]/ {print $2, $4}' > /tmp/tdos-runtime-size.$$
cut -d' ' -f2 /tmp/tdos-runtime-size.$$ | $demangle --simplified > /tmp/tdos-runtime-size.$$.names
python3 - /tmp/tdos-runtime-size.$$ /tmp/tdos-runtime-size.$$.names <<'PY'
import re, sys
sizes = [int(l.split()[0], 16) for l in open(sys.argv[1])]
names = [l.rstrip("\n") for l in open(sys.argv[2])]
groups = [
    ("scheduler", r"^(Scheduler|SchedulerConfig|SchedulerContext|SchedulerEvent|SchedulerStats|SchedulerLimits|Task\w*|SlotTable|EventRing|ReadyRing|CriticalFault|PendingSpawn)\b"),
    ("subscriptions", r"^(PubSub\w*|Subscribe|Notify|Subscription\w*)\b"),
    ("config", r"^(Config\w*|ProvisionRecord)\b"),
    ("metrics", r"^(Metrics\w*|Histogram\w*)\b"),
    ("rate limiter", r"^(RateLimiter\w*)\b"),
]
strip = re.compile(r"^((specialized|static|merged|outlined \w+ of|closure #\d+ (\([^)]*\) )?in|implicit closure #\d+ (\([^)]*\) )?in|partial apply for|thunk for|reabstraction thunk helper from|generic specialization <[^>]*> of|function signature specialization <[^>]*> of|property wrapper backing initializer of|key path getter for|\$defer #\d+ \(\) in|variable initialization expression of)\s+)+")
totals = {g: 0 for g, _ in groups}
for size, name in zip(sizes, names):
    n = strip.sub("", name)
    for g, pat in groups:
        if re.match(pat, n):
            totals[g] += size
            break
total = sum(totals.values())
print("runtime-size: armv6m TDOSCore object (-Osize), by component (code + constants, before --gc-sections):")
for g, _ in groups:
    print(f"  {g:14s} {totals[g] / 1024:6.1f} KB")
print(f"  {'runtime total':14s} {total / 1024:6.1f} KB")
PY
rm -f /tmp/tdos-runtime-size.$$ /tmp/tdos-runtime-size.$$.names
