"""Benchmark: the reports and the forecast on two years of one car park's history, beside a plain COUNT(*).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parkgate REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/reports.py [--bookings 300000] [--rounds 20]

Works in a throwaway database next to DATABASE_URL's (`<name>_bench_reports`: created, migrated, seeded with the
demo world, dropped afterwards; keep it with --keep). Generates in SQL (generate_series, no Python per row) two
years at LHR-T5 ending today: `--bookings` bookings from every channel (about 8% cancelled, 4% no-shows, the rest
with a visit), twice as many visits in all (walk-ins and permit holders besides), entry/exit reads for every visit
and unknown vehicles turned away up to about 2 million reads, and each booking's ledger postings (sale, commission,
cancellation). The ledger's balance trigger is switched off while generating (the rows balance by construction).
Then, as production keeps it, the hourly occupancy summary is built (`insight_rebuild`, timed), and a `serve`
answers the report pages to a logged-in supervisor over HTTP: each page `--rounds` times (p50/p95), beside
`SELECT count(*)` over the same bookings table in the same run; the forecast for 30 days is timed in process.
Targets: each report p95 < 1 s; the forecast < 10 s. The last line is one JSON object.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_database_url, log, manage, recreate_database  # noqa: E402  (after the path is set)
from tests.support import start_server  # noqa: E402  (after the path is set)

TARGET_REPORT_P95_S = 1.0
TARGET_FORECAST_S = 10.0
PAGES = {
    "revenue (30 days by day)": "/reports/revenue/?carpark=LHR-T5",
    "revenue (2 years by month)": "/reports/revenue/?carpark=LHR-T5&group=month&start={two_years}&end={yesterday}",
    "occupancy (7 days per hour)": "/reports/occupancy/?carpark=LHR-T5",
    "occupancy (31 days per hour)": "/reports/occupancy/?carpark=LHR-T5&start={month_ago}&end={yesterday}",
    "arrivals (30 days)": "/reports/arrivals/?carpark=LHR-T5",
    "agents (90 days)": "/reports/agents/?carpark=LHR-T5",
    "revenue CSV (30 days)": "/reports/revenue/?carpark=LHR-T5&format=csv",
}

GENERATE = """
ALTER TABLE accounting_ledgertransaction DISABLE TRIGGER accounting_ledger_balanced;
CREATE TEMP TABLE agent_ids AS SELECT row_number() OVER (ORDER BY id) AS i, id, code, commission_rate FROM agents_agent;
INSERT INTO bookings_customer (name, email, phone) VALUES ('Bench customer', '', '');
INSERT INTO bookings_booking (reference, carpark_id, agent_id, agent_ref, customer_id, arrival, departure, status,
    source, price, currency, commission, overbooked, needs_review, review_note, flight_outbound, flight_return,
    flight_return_key, meet_and_greet, return_status, created_at, updated_at)
SELECT 'PG-B' || g, %(cp)s, ag.id, CASE WHEN ag.id IS NOT NULL THEN 'B' || g END,
       (SELECT max(id) FROM bookings_customer), x.a, x.a + x.days * interval '1 day',
       CASE WHEN x.r < 0.08 THEN 'cancelled' WHEN x.a > now() THEN 'confirmed'
            WHEN x.r < 0.12 THEN 'no_show' WHEN x.a + x.days * interval '1 day' > now() THEN 'arrived'
            ELSE 'departed' END,
       CASE WHEN ag.id IS NULL THEN 'web' WHEN ag.i = 1 THEN 'api' ELSE 'email' END,
       x.days * 12, 'GBP', CASE WHEN ag.id IS NOT NULL THEN round(x.days * 12 * ag.commission_rate, 2) END,
       false, false, '', '', '', '', false, '',
       x.a - x.lead, CASE WHEN x.r < 0.08 THEN x.a - x.lead * random() ELSE x.a - x.lead END
FROM generate_series(1, %(n)s) g
CROSS JOIN LATERAL (
    SELECT now() - interval '730 days' + (g::float / %(n)s) * interval '760 days'
               + (random() * 20) * interval '1 hour' AS a,
           1 + floor(random() * 7)::int AS days, random() AS r, random() * interval '40 days' AS lead, g %% 5 AS ch
) x
LEFT JOIN agent_ids ag ON ag.i = x.ch AND x.ch BETWEEN 1 AND 3;
INSERT INTO access_visit (carpark_id, plate, lookalike_key, entered_at, exited_at, booking_id, closed_reason,
    overstay_minutes)
SELECT b.carpark_id, 'B' || b.id, 'B' || b.id, b.arrival + (random() * 90 - 60) * interval '1 minute',
       CASE WHEN b.status = 'departed' THEN b.departure + (random() * 120 - 30) * interval '1 minute' END,
       b.id, '', NULL
FROM bookings_booking b WHERE b.status IN ('departed', 'arrived');
INSERT INTO access_visit (carpark_id, plate, lookalike_key, entered_at, exited_at, booking_id, closed_reason)
SELECT %(cp)s, 'W' || g, 'W' || g, t, t + random() * interval '10 hours', NULL, ''
FROM generate_series(1, %(n)s) g,
     LATERAL (SELECT now() - interval '730 days' + (g::float / %(n)s) * interval '729 days' AS t) x;
INSERT INTO access_plateread (device_id, lane_id, carpark_id, read_id, plate_raw, plate, lookalike_key, score,
    candidates, region, vehicle, retransmit, local_action, captured_at, received_at, action, reason, match,
    booking_id, decision, unpaired_exit)
SELECT %(device)s, CASE WHEN e.entry THEN %(lane_in)s ELSE %(lane_out)s END, v.carpark_id,
       'r' || v.id || CASE WHEN e.entry THEN 'i' ELSE 'o' END, v.plate, v.plate, v.lookalike_key, 0.95, '[]', '',
       '{}', false, '', e.t, e.t, 'open', CASE WHEN e.entry THEN 'booking' ELSE 'departure' END, 'exact',
       v.booking_id, '{}', false
FROM access_visit v CROSS JOIN LATERAL (VALUES (true, v.entered_at), (false, v.exited_at)) AS e(entry, t)
WHERE e.t IS NOT NULL;
INSERT INTO access_plateread (device_id, lane_id, carpark_id, read_id, plate_raw, plate, lookalike_key, score,
    candidates, region, vehicle, retransmit, local_action, captured_at, received_at, action, reason, match,
    booking_id, decision, unpaired_exit)
SELECT %(device)s, %(lane_in)s, %(cp)s, 'u' || g, 'ZZ' || g, 'ZZ' || g, 'ZZ' || g, 0.9, '[]', '', '{}', false, '',
       t, t, 'deny', 'unknown_vehicle', '', NULL, '{}', false
FROM generate_series(1, greatest(0, %(reads)s - (SELECT count(*) FROM access_plateread))) g,
     LATERAL (SELECT now() - interval '730 days' + random() * interval '730 days' AS t) x;
INSERT INTO accounting_accountingperiod (month)
SELECT DISTINCT date_trunc('month', d)::date
FROM generate_series(now() - interval '800 days', now() + interval '60 days', interval '1 day') d
ON CONFLICT DO NOTHING;
INSERT INTO accounting_ledgertransaction (date, kind, currency, memo, carpark_id, booking_id, created_at)
SELECT (b.created_at AT TIME ZONE 'Europe/London')::date, 'booking', 'GBP', b.reference || ' confirmed', b.carpark_id,
       b.id, now()
FROM bookings_booking b
UNION ALL
SELECT (b.updated_at AT TIME ZONE 'Europe/London')::date, 'booking', 'GBP', b.reference || ' cancelled',
       b.carpark_id, b.id, now()
FROM bookings_booking b WHERE b.status = 'cancelled';
INSERT INTO accounting_ledgerline (transaction_id, account_id, amount, booking_id, agent_id)
SELECT t.id, acc.id, CASE WHEN t.memo LIKE '%%cancelled' THEN -l.amount ELSE l.amount END, b.id, l.agent
FROM accounting_ledgertransaction t JOIN bookings_booking b ON b.id = t.booking_id
CROSS JOIN LATERAL (VALUES ('1100', b.price, NULL::bigint), ('4000', -b.price, NULL),
                           ('5100', b.commission, NULL), ('2100', -b.commission, b.agent_id)) AS l(code, amount, agent)
JOIN accounting_account acc ON acc.code = l.code
WHERE l.amount IS NOT NULL AND l.amount <> 0;
ALTER TABLE accounting_ledgertransaction ENABLE TRIGGER accounting_ledger_balanced;
"""


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bookings", type=int, default=300_000)
    parser.add_argument("--reads", type=int, default=0, help="total reads (default: about 6.7 per booking)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    reads = args.reads or round(args.bookings * 20 / 3)

    admin_url, url, name = bench_database_url(os.environ.get("DATABASE_URL", ""), "reports")
    recreate_database(admin_url, name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")}
    # LOG_LEVEL INFO: start_server waits for serve's "listening" lines
    env.update(DATABASE_URL=url, DEBUG="0", PARKGATE_HTTPS="0", ALLOWED_HOSTS="localhost,127.0.0.1", LOG_LEVEL="INFO")
    env.update(STAFF_TWO_FACTOR="0")  # the bench signs in with a password alone: the pages are measured, not sign-in
    env.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.update(DATABASE_URL=url, SECRET_KEY=env["SECRET_KEY"], DJANGO_SETTINGS_MODULE="project.settings")
    try:
        manage(env, "migrate", "-v0")
        manage(env, "seed_demo")
        import django

        django.setup()
        result = run(env, args, reads)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(admin_url, name, drop_only=True)
    print(json.dumps(result))


def run(env: dict, args, reads: int) -> dict:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from apps.access.models import Device
    from apps.carparks.models import CarPark
    from apps.insight.forecast import forecast_refresh

    carpark = CarPark.objects.get(code="LHR-T5")
    lanes = {lane.code: lane.pk for lane in carpark.lanes.all()}
    device = Device.objects.create(carpark=carpark, name="bench")
    started = time.perf_counter()
    params = {"cp": carpark.pk, "n": args.bookings, "reads": reads, "device": str(device.pk),
              "lane_in": lanes["N-IN"], "lane_out": lanes["N-OUT"]}  # fmt: skip
    with connection.cursor() as cursor:
        for statement in GENERATE.split(";\n"):  # one statement per call (bound parameters)
            if statement.strip():
                cursor.execute(statement, params)
        cursor.execute("ANALYZE")
        counts = {}
        for table in ("bookings_booking", "access_visit", "access_plateread", "accounting_ledgerline"):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)
            counts[table] = cursor.fetchone()[0]
    log(f"generated in {time.perf_counter() - started:.1f} s: {counts}")

    today = timezone.localdate()
    started = time.perf_counter()
    manage(env, "insight_rebuild", "--carpark", "LHR-T5", "--start", str(today - timedelta(days=731)),
           "--end", str(today))  # fmt: skip
    summary_s = time.perf_counter() - started
    log(f"hourly summary built in {summary_s:.1f} s")

    dates = {
        "yesterday": today - timedelta(days=1),
        "month_ago": today - timedelta(days=31),
        "two_years": today - timedelta(days=730),
    }
    server = start_server(env, name="bench-reports", worker=False)
    try:
        client = httpx.Client(base_url=server.http, timeout=60)
        form = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        client.post("/accounts/login/", data={"username": "demo", "password": "demo", "csrfmiddlewaretoken": token})
        timings: dict[str, list[float]] = {label: [] for label in PAGES}
        timings["COUNT(*) bookings"] = []
        for _ in range(args.rounds):  # interleaved, so the machine's other load falls on all alike
            for label, path in PAGES.items():
                t = time.perf_counter()
                answer = client.get(path.format(**dates))
                timings[label].append(time.perf_counter() - t)
                if answer.status_code != 200:
                    sys.exit(f"{label}: HTTP {answer.status_code}\n{answer.text[:500]}")
            t = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM bookings_booking")
            timings["COUNT(*) bookings"].append(time.perf_counter() - t)
    finally:
        server.stop()

    started = time.perf_counter()
    forecast_refresh(carpark_id=carpark.pk)
    forecast_s = time.perf_counter() - started

    pages = {
        label: {"p50_ms": round(p(v, 0.5) * 1000), "p95_ms": round(p(v, 0.95) * 1000)} for label, v in timings.items()
    }
    for label, figures in pages.items():
        log(f"{label:32s} p50 {figures['p50_ms']:6d} ms   p95 {figures['p95_ms']:6d} ms")
    log(f"forecast (30 days, with backtest)  {forecast_s:.2f} s")
    ok = all(v["p95_ms"] < TARGET_REPORT_P95_S * 1000 for k, v in pages.items() if not k.startswith("COUNT"))
    return {
        "rows": counts,
        "summary_build_s": round(summary_s, 1),
        "pages": pages,
        "forecast_s": round(forecast_s, 2),
        "targets_met": ok and forecast_s < TARGET_FORECAST_S,
    }


if __name__ == "__main__":
    main()
