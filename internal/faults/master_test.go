package faults

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// slowSink starts a sink that waits one second before it replies to DATA, so
// that a drain of a few hundred messages lasts several seconds. smtp-sink
// needs -p with a delayed reply.
func slowSink(t *testing.T) *testbed.Sink {
	return testbed.StartSink(t, "-p", "-w", "1")
}

// assertDrained checks the figures every fault test shares: every message
// delivered at least once, nothing left in the queue, nothing in corrupt.
func assertDrained(t *testing.T, inst *testbed.Instance, sink *testbed.Sink, n int) tally {
	t.Helper()
	err := waitDrained(t, inst, 120*time.Second)
	tl := countSink(t, sink, n)
	t.Logf("%s, %d left, %d corrupt", tl, queueLeft(t, inst), corruptCount(t, inst))
	assert.NoError(t, err)
	assert.Equal(t, n, tl.delivered, "messages delivered at least once")
	assert.Empty(t, tl.missing, "message numbers never delivered")
	assert.Zero(t, queueLeft(t, inst), "files left in the queue")
	assert.Zero(t, corruptCount(t, inst), "files in corrupt")
	return tl
}

func TestMaster_StopStartMidDrain(t *testing.T) {
	const messages = 200
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			sink := slowSink(t)
			inst := startInstance(t, impl.binary, testbed.Options{RelayPort: sink.Port, MainCF: fastRetry()})
			submitMessages(t, inst, messages, 8)

			// Stop master twice while the sink has part of the mail.
			for _, atLeast := range []int{20, 80} {
				require.NoError(t, sink.WaitDelivered(atLeast, 60*time.Second))
				require.NoError(t, inst.Stop())
				require.Empty(t, qmgrPIDs(inst), "qmgr processes after postfix stop")
				require.NoError(t, inst.Start())
			}
			require.NoError(t, inst.Kick("I"))
			assertDrained(t, inst, sink, messages)
		})
	}
}

func TestMaster_ReloadDuringDrain(t *testing.T) {
	const messages = 200
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			sink := slowSink(t)
			inst := startInstance(t, impl.binary, testbed.Options{RelayPort: sink.Port, MainCF: fastRetry()})
			submitMessages(t, inst, messages, 8)

			reloads := 0
			for sink.Delivered() < messages*3/4 && reloads < 8 {
				require.NoError(t, inst.Reload())
				reloads++
				time.Sleep(time.Second)
			}
			t.Logf("%d reloads during the drain", reloads)
			assert.GreaterOrEqual(t, reloads, 3, "reloads before three quarters of the mail arrived")
			assertDrained(t, inst, sink, messages)
		})
	}
}
