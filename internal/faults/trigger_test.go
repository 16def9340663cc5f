package faults

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// floodTrigger writes random bytes to the qmgr trigger endpoint from
// several goroutines until stop is closed and returns the number of writes.
// On a socket, every write is one connection.
//
// NOTE: the flood leaves out clients that connect and send nothing. The C
// trigger server (trigger_server_accept_local) waits up to 10 s for the
// first byte of each connection and serves nothing else meanwhile, so a few
// idle clients stall the C oqmgr by design.
func floodTrigger(t *testing.T, endpoint, serviceType string, stop <-chan struct{}) *atomic.Int64 {
	t.Helper()
	var writes atomic.Int64
	var wg sync.WaitGroup
	for worker := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(worker), 3))
			var fifo *os.File
			if serviceType == "fifo" {
				var err error
				fifo, err = os.OpenFile(endpoint, os.O_WRONLY, 0)
				if err != nil {
					t.Errorf("open fifo %s: %v", endpoint, err)
					return
				}
				defer fifo.Close()
			}
			junk := make([]byte, 4096)
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range junk {
					junk[i] = byte(r.UintN(256))
				}
				size := 1 + r.IntN(len(junk))
				if fifo != nil {
					if _, err := fifo.Write(junk[:size]); err == nil {
						writes.Add(1)
					}
					continue
				}
				c, err := net.DialTimeout("unix", endpoint, time.Second)
				if err != nil {
					continue
				}
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(junk[:size]); err == nil {
					writes.Add(1)
				}
				c.Close()
			}
		}()
	}
	t.Cleanup(wg.Wait)
	return &writes
}

func TestTrigger_FloodKeepsDeliveringWithBoundedMemory(t *testing.T) {
	const messages = 20
	for _, serviceType := range []string{"unix", "fifo"} {
		for _, impl := range implementations(t) {
			t.Run(serviceType+"/"+impl.name, func(t *testing.T) {
				sink := testbed.StartSink(t)
				inst := startInstance(t, impl.binary, testbed.Options{RelayPort: sink.Port, ServiceType: serviceType})
				require.NoError(t, inst.Kick("I"))
				pid := waitQmgr(t, inst, 10*time.Second)
				before := rssKB(t, pid)

				stop := make(chan struct{})
				writes := floodTrigger(t, filepath.Join(inst.QueueDir, "public", "qmgr"), serviceType, stop)
				time.Sleep(3 * time.Second)

				start := time.Now()
				submitMessages(t, inst, messages, 2)
				err := sink.WaitDelivered(messages, 30*time.Second)
				latency := time.Since(start)
				time.Sleep(2 * time.Second)
				close(stop)

				after := rssKB(t, pid)
				t.Logf("%s over %s: %d flood writes, %d messages delivered in %s, RSS %d kB before, %d kB after",
					impl.name, serviceType, writes.Load(), sink.Delivered(), latency.Round(10*time.Millisecond), before, after)
				assert.NoError(t, err, "delivery during the flood")
				assert.Greater(t, writes.Load(), int64(1000), "flood writes")
				assert.Equal(t, []int{pid}, qmgrPIDs(inst), "the same qmgr process survives the flood")
				assert.Less(t, after, before+32*1024, "RSS growth in kB during the flood")
				require.NoError(t, inst.WaitQueueEmpty(30*time.Second))
			})
		}
	}
}
