package lifecycle

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// deferral is one observed move of a message into the deferred queue.
type deferral struct {
	observed time.Time // when the test saw the new time stamp
	mtime    time.Time // the file's time stamp: the next-attempt time
	path     string
}

// watchDeferrals polls the message's queue file until it has seen n
// distinct deferred time stamps or timeout passes.
func watchDeferrals(t *testing.T, inst *testbed.Instance, id string, n int, timeout time.Duration) []deferral {
	t.Helper()
	var seen []deferral
	deadline := time.Now().Add(timeout)
	for len(seen) < n && time.Now().Before(deadline) {
		f, ok := findQueueFile(t, inst, id)
		if ok && f.queue == "deferred" && (len(seen) == 0 || !f.info.ModTime().Equal(seen[len(seen)-1].mtime)) {
			seen = append(seen, deferral{observed: time.Now(), mtime: f.info.ModTime(), path: f.path})
		}
		time.Sleep(20 * time.Millisecond)
	}
	return seen
}

// cBackoff is the delay qmgr_active_done_3_generic in src/oqmgr/qmgr_active.c
// of Postfix 3.7 adds to the current time: the message's age in whole
// seconds, first lowered to the maximum and then raised to the minimum, so
// a minimum above the maximum wins.
func cBackoff(age, minimal, maximal int64) int64 {
	delay := age
	if delay > maximal {
		delay = maximal
	}
	if delay < minimal {
		delay = minimal
	}
	return delay
}

// backoffFigures are the delays measured in one run.
type backoffFigures struct {
	ages   []int64 // message age in seconds at each deferral, as the rule needs it
	delays []int64 // time stamp minus that deferral's time, in seconds
}

func TestBackoff_TimeStampFollowsAge(t *testing.T) {
	tests := []struct {
		name             string
		minimal, maximal int64 // seconds
		deferrals        int
		hashDepth        int
	}{
		{name: "age between bounds", minimal: 2, maximal: 3600, deferrals: 4, hashDepth: 2},
		{name: "capped at maximum", minimal: 1, maximal: 3, deferrals: 5, hashDepth: 1},
		{name: "minimum above maximum", minimal: 4, maximal: 2, deferrals: 3, hashDepth: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			results := compare(t, func(t *testing.T, q qmgr) backoffFigures {
				inst := start(t, q, testbed.Options{
					RelayPort: deadPort(t),
					MainCF: map[string]string{
						"queue_run_delay":      "1s",
						"minimal_backoff_time": fmt.Sprintf("%ds", tt.minimal),
						"maximal_backoff_time": fmt.Sprintf("%ds", tt.maximal),
						"hash_queue_depth":     strconv.Itoa(tt.hashDepth),
					},
				})
				id := submit(t, inst, "sender@example.org", "", []rcpt{{addr: "rcpt@example.net"}}, messageText("backoff"))
				seen := watchDeferrals(t, inst, id, tt.deferrals, 40*time.Second)
				require.Len(t, seen, tt.deferrals, "deferrals of %s seen", id)

				// Hashed queues: one directory level per hash_queue_depth,
				// named after the leading characters of a short queue id.
				hashDirs := ""
				for i := range tt.hashDepth {
					hashDirs = filepath.Join(hashDirs, id[i:i+1])
				}
				assert.Equal(t, filepath.Join(inst.QueueDir, "deferred", hashDirs, id), seen[0].path, "deferred file path")
				assert.FileExists(t, filepath.Join(inst.QueueDir, "defer", hashDirs, id), "defer log of %s", id)

				created := readQueueFile(t, seen[len(seen)-1].path).CreateTime.Unix()
				var fig backoffFigures
				for i, d := range seen {
					// The queue manager's clock read lies at most a
					// couple of seconds before the test saw the file.
					stamp := d.mtime.Unix()
					matched := false
					for now := d.observed.Unix() - 2; now <= d.observed.Unix(); now++ {
						if now+cBackoff(now-created, tt.minimal, tt.maximal) == stamp {
							fig.ages = append(fig.ages, now-created)
							fig.delays = append(fig.delays, stamp-now)
							matched = true
							break
						}
					}
					assert.True(t, matched, "deferral %d: time stamp %d (created %d, seen at %d) is no clock reading plus the C backoff (min %d, max %d)",
						i, stamp-created, created, d.observed.Unix()-created, tt.minimal, tt.maximal)
				}
				t.Logf("%s: ages %v, delays %v", q.name, fig.ages, fig.delays)
				return fig
			})
			if c, ok := results["C"]; ok {
				if g, ok := results["Go"]; ok {
					t.Logf("C ages %v delays %v; Go ages %v delays %v", c.ages, c.delays, g.ages, g.delays)
				}
			}
		})
	}
}

func TestDeferredScan_EveryQueueRunDelay(t *testing.T) {
	const runDelay = 4 // seconds
	t.Parallel()
	results := compare(t, func(t *testing.T, q qmgr) []time.Duration {
		inst := start(t, q, testbed.Options{
			RelayPort: deadPort(t),
			MainCF: map[string]string{
				"queue_run_delay":      fmt.Sprintf("%ds", runDelay),
				"minimal_backoff_time": "1s",
				"maximal_backoff_time": "1s",
			},
		})
		id := submit(t, inst, "sender@example.org", "", []rcpt{{addr: "rcpt@example.net"}}, messageText("scan period"))
		waitFor(t, 40*time.Second, func() bool { return len(attempts(t, inst, id)) >= 5 }, "five attempts of %s", id)

		// The first attempt comes from the incoming scan. Every later one
		// waits for the next deferred scan, although the time stamp was
		// due one second after the previous attempt.
		times := attempts(t, inst, id)
		var gaps []time.Duration
		for i := 1; i < len(times); i++ {
			gaps = append(gaps, times[i].Sub(times[i-1]))
		}
		for i, gap := range gaps[1:] {
			assert.InDelta(t, runDelay, gap.Seconds(), 1, "gap %d between attempts of %s: %v", i+1, id, gaps)
		}
		t.Logf("%s: gaps between attempts %v", q.name, gaps)
		return gaps
	})
	t.Logf("gaps: C %v, Go %v", results["C"], results["Go"])
}

func TestBackoff_WholeSecondTimeStamp(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) struct{} {
		inst := start(t, q, testbed.Options{
			RelayPort: deadPort(t),
			MainCF: map[string]string{
				"minimal_backoff_time": "60s",
				"maximal_backoff_time": "60s",
			},
		})
		id := submit(t, inst, "sender@example.org", "", []rcpt{{addr: "rcpt@example.net"}}, messageText("whole second"))
		seen := watchDeferrals(t, inst, id, 1, 30*time.Second)
		require.Len(t, seen, 1, "deferral of %s seen", id)

		// The C program sets the time with utime(2), which takes whole
		// seconds, so the next attempt is due at the start of a second.
		assert.Zero(t, seen[0].mtime.Nanosecond(), "time stamp %s of %s has a fraction of a second", seen[0].mtime, seen[0].path)
		return struct{}{}
	})
}
