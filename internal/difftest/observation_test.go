package difftest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountEstablished_SinkPorts(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:09C4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:09C4 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D431 0100007F:09C4 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:09C4 0100007F:D432 08 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:09C5 0100007F:D433 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1
`
	got := countEstablished(table, map[string]int{"a": 2500, "b": 2501, "c": 2502})
	assert.Equal(t, map[string]int{"a": 1, "b": 1}, got, "established server ends per sink")
}

func TestNewObservation_NormalisesLines(t *testing.T) {
	lines := []LogLine{
		{At: time.Second, Text: "Dec 04 21:41:40 testbed postfix/cleanup[10]: 4A1B2C3D4E: message-id=<difftest-m1@example.org>"},
		{At: 2 * time.Second, Text: "Dec 04 21:41:41 testbed postfix/qmgr[11]: 4A1B2C3D4E: from=<sender@example.org>, size=300, nrcpt=1 (queue active)"},
		{At: 3 * time.Second, Text: "Dec 04 21:41:42 testbed postfix/smtp[12]: 4A1B2C3D4E: to=<r@a.example>, relay=127.0.0.1[127.0.0.1]:2500, delay=1.2, delays=0.01/0/0.02/1.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)"},
		{At: 4 * time.Second, Text: "Dec 04 21:41:43 testbed postfix/error[13]: 5F6E7D8C9B: to=<r@b.example>, orig_to=<x@b.example>, relay=none, delay=12, delays=12/0/0/0, dsn=4.0.0, status=deferred (delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2501: Connection refused)"},
		{At: 5 * time.Second, Text: "Dec 04 21:41:44 testbed postfix/qmgr[11]: warning: mail for [127.0.0.1]:2500 is using up 3 of 3 active queue entries"},
	}
	o := newObservation("C", lines, nil, map[string]int{"slow": 2500, "dead": 2501})

	require.Len(t, o.Deliveries, 2)
	assert.Equal(t, Delivery{At: 3 * time.Second, Delay: 1200 * time.Millisecond, Program: "smtp", Message: "m1", Recipient: "r@a.example",
		Relay: "127.0.0.1[127.0.0.1]:slow", DSN: "2.0.0", Status: "sent", Reason: "250 2.0.0 Ok"}, o.Deliveries[0])
	assert.Equal(t, Delivery{At: 4 * time.Second, Delay: 12 * time.Second, Program: "error", Message: "id1", Recipient: "r@b.example",
		Relay: "none", DSN: "4.0.0", Status: "deferred",
		Reason: "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:dead: Connection refused"}, o.Deliveries[1])
	assert.Len(t, o.Suspended(), 1, "suspended recipients")
	assert.Equal(t, []string{
		"m1: from=<sender@example.org>, size=300, nrcpt=1 (queue active)",
		"warning: mail for [127.0.0.1]:slow is using up 3 of 3 active queue entries",
	}, o.QmgrLines())
	assert.Equal(t, map[string]int{"smtp sent 2.0.0": 1, "error deferred 4.0.0": 1}, o.StatusCounts())
}

func TestClimb_IgnoresShortOverlaps(t *testing.T) {
	o := &Observation{Samples: map[string][]Sample{"s": {
		{At: 0, Connections: 0},
		{At: time.Second, Connections: 2},
		{At: 2 * time.Second, Connections: 3}, // a closing connection overlaps the next one
		{At: 2*time.Second + 10*time.Millisecond, Connections: 2},
		{At: 3 * time.Second, Connections: 4},
		{At: 4 * time.Second, Connections: 0},
	}}}
	assert.Equal(t, 4, o.MaxConnections("s"), "highest lasting count")
	assert.Equal(t, []time.Duration{time.Second, time.Second, 3 * time.Second, 3 * time.Second}, o.Climb("s"), "first time each count was reached")
}
