package faults

import (
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// killSchedule returns count offsets from the start of a drain at which the
// queue manager is killed, drawn from a fixed seed so that every run and
// both implementations get the same schedule.
func killSchedule(count int, within time.Duration) []time.Duration {
	r := rand.New(rand.NewPCG(7, 11))
	offsets := make([]time.Duration, count)
	for i := range offsets {
		offsets[i] = time.Duration(r.Int64N(int64(within)))
	}
	slices.Sort(offsets)
	return offsets
}

// killResult is the outcome of one drain with kills.
type killResult struct {
	tally
	kills   int // SIGKILLs delivered to a running qmgr
	left    int
	corrupt int
	locked  int // files skipped at a restart because an agent held them
	drain   time.Duration
}

// drainWithKills submits n messages to an instance running binary and kills
// its qmgr with SIGKILL at each offset of schedule, measured from the start
// of the submission. After each kill the next trigger makes master start a
// new qmgr; cleanup sends one per message, and the test kicks as well.
func drainWithKills(t *testing.T, binary string, n int, schedule []time.Duration) killResult {
	sink := testbed.StartSink(t)
	inst := startInstance(t, binary, testbed.Options{RelayPort: sink.Port, MainCF: fastRetry()})
	start := time.Now()

	var res killResult
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, at := range schedule {
			select {
			case <-done:
				return
			case <-time.After(time.Until(start.Add(at))):
			}
			for _, pid := range qmgrPIDs(inst) {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					res.kills++
				}
			}
			// master restarts the service only when a trigger arrives.
			time.Sleep(100 * time.Millisecond)
			_ = inst.Kick("I")
		}
	}()

	submitMessages(t, inst, n, 8)
	wg.Wait()
	close(done)
	require.NoError(t, inst.Kick("I"))

	// Files an agent still had locked when its qmgr died come back about
	// 60 s later, so the drain may take that long after the last kill.
	err := waitDrained(t, inst, 150*time.Second)
	res.drain = time.Since(start)
	res.tally = countSink(t, sink, n)
	res.left = queueLeft(t, inst)
	res.corrupt = corruptCount(t, inst)
	res.locked = countLines(t, inst, ": skipped, still being delivered")
	assert.NoError(t, err, "drain after %d kills", res.kills)
	return res
}

func TestKill_DrainLosesNoMail(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 1000 messages under repeated SIGKILL, which takes up to three minutes")
	}
	const messages = 1000
	schedule := killSchedule(10, 15*time.Second)

	results := map[string]killResult{}
	var mu sync.Mutex
	t.Run("group", func(t *testing.T) {
		for _, impl := range implementations(t) {
			t.Run(impl.name, func(t *testing.T) {
				t.Parallel()
				res := drainWithKills(t, impl.binary, messages, schedule)
				t.Logf("%s oqmgr: %s, %d kills, %d locked files skipped, %d left, %d corrupt, drained in %s",
					impl.name, res.tally, res.kills, res.locked, res.left, res.corrupt, res.drain.Round(time.Second))

				assert.Equal(t, messages, res.delivered, "messages delivered at least once")
				assert.Empty(t, res.missing, "message numbers never delivered")
				assert.Zero(t, res.left, "files left in the queue")
				assert.Zero(t, res.corrupt, "files in corrupt")
				assert.GreaterOrEqual(t, res.kills, len(schedule)/2, "kills that hit a running qmgr")
				mu.Lock()
				results[impl.name] = res
				mu.Unlock()
			})
		}
	})

	ours, okOurs := results["go"]
	c, okC := results["c"]
	if !okOurs || !okC {
		return
	}
	// Duplicates come from deliveries that finished while no qmgr could
	// hear the result. The same schedule hits both programs at different
	// points of their work, so allow a small margin over the C figure.
	assert.LessOrEqual(t, ours.duplicates, c.duplicates+5, "our duplicates (%d) against the C oqmgr's (%d)", ours.duplicates, c.duplicates)
}
