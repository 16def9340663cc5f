// Package difftest runs one mail scenario under the C oqmgr from the Debian
// Postfix 3.7 package and under our cmd/oqmgr, in identical private
// instances from internal/testbed, and records what an outside observer sees
// in each run:
//
//   - every per-recipient status line (agent, recipient, DSN, status,
//     reason) with the time the harness read it from the maillog;
//   - the established connections at each smtp-sink over time, sampled
//     from /proc/net/tcp, which equal deliveries in progress when
//     smtp_connection_cache_on_demand is off;
//   - the recipients that the retry agent reported as "delivery temporarily
//     suspended" and when;
//   - the queue manager's own log lines with queue ids, process ids, delays
//     and sink ports replaced by stable names.
//
// The scenario tests in this package assert the figures measured from the C
// program for both queue managers. A scenario whose figures differ for ours
// because of a scheduler bug names the difference in Scenario.KnownDifference,
// which skips only the run of our binary.
//
// The package needs root and the Debian postfix package, as internal/testbed
// does. It is imported by its own tests only.
package difftest
