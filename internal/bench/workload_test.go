package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSizes_ParseSizes(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    Sizes
		wantErr string
	}{
		{name: "empty keeps defaults", list: "", want: DefaultSizes},
		{name: "two overrides", list: "discard=20000, active=300", want: Sizes{Discard: 20000, SMTP: 3000, Fanout: 300, Deferred: 20000, Active: 300}},
		{name: "unknown workload", list: "local=5", wantErr: `unknown workload "local"`},
		{name: "missing count", list: "smtp", wantErr: `invalid size "smtp"`},
		{name: "zero", list: "smtp=0", wantErr: "invalid size 0 for workload smtp"},
		{name: "not a number", list: "smtp=many", wantErr: `invalid size "smtp=many"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultSizes
			err := got.ParseSizes(tt.list)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWorkloads_Shapes(t *testing.T) {
	ws, err := workloads(AllWorkloads, Sizes{Discard: 10, SMTP: 20, Fanout: 3, Deferred: 40, Active: 100})
	require.NoError(t, err)
	require.Len(t, ws, 5)

	byName := map[string]workload{}
	for _, w := range ws {
		byName[w.name] = w
	}
	assert.Equal(t, workload{name: Discard, title: byName[Discard].title, messages: 10, recipients: 1, queue: "incoming", tmpfs: true, pool: poolSingle}, byName[Discard])
	assert.Equal(t, 50, byName[Fanout].recipients)
	assert.Equal(t, poolFanout, byName[Fanout].pool)
	assert.Equal(t, "deferred", byName[Deferred].queue)
	assert.Equal(t, 100, byName[Active].activeLimit)
	assert.Equal(t, 110, byName[Active].messages, "active queues 10% more than its limit")

	_, err = workloads([]string{"discard", "bogus"}, DefaultSizes)
	assert.ErrorContains(t, err, `unknown workload "bogus"`)
}

func TestWorkload_MainCF(t *testing.T) {
	ws, err := workloads(AllWorkloads, DefaultSizes)
	require.NoError(t, err)
	for _, w := range ws {
		t.Run(w.name, func(t *testing.T) {
			ports := make([]int, len(w.sinkArgs()))
			for i := range ports {
				ports[i] = 10025 + i
			}
			cf := w.mainCF(ports)
			assert.Equal(t, "yes", cf["enable_long_queue_ids"])
			switch w.name {
			case Discard, Deferred:
				assert.Equal(t, "discard", cf["default_transport"])
			case Fanout:
				require.Len(t, ports, 10)
				assert.Equal(t, "inline:{d0.example=smtp:[127.0.0.1]:10025, d1.example=smtp:[127.0.0.1]:10026, "+
					"d2.example=smtp:[127.0.0.1]:10027, d3.example=smtp:[127.0.0.1]:10028, d4.example=smtp:[127.0.0.1]:10029, "+
					"d5.example=smtp:[127.0.0.1]:10030, d6.example=smtp:[127.0.0.1]:10031, d7.example=smtp:[127.0.0.1]:10032, "+
					"d8.example=smtp:[127.0.0.1]:10033, d9.example=smtp:[127.0.0.1]:10034}", cf["transport_maps"])
			case Active:
				assert.Equal(t, "10000", cf["qmgr_message_active_limit"])
				assert.Equal(t, [][]string{{"-p", "-w", "60"}}, w.sinkArgs())
			case SMTP:
				assert.Len(t, cf, 1, "smtp uses the test bed's relayhost")
			}
		})
	}
}

func TestFanoutEnvelope(t *testing.T) {
	e := fanoutEnvelope(7)
	require.Len(t, e.to, 50)
	perDomain := map[string]int{}
	for _, rcpt := range e.to {
		perDomain[rcpt[len(rcpt)-len("d0.example"):]]++
	}
	assert.Len(t, perDomain, 10)
	for domain, n := range perDomain {
		assert.Equal(t, 5, n, "recipients in %s", domain)
	}
	assert.Equal(t, "user7.0@d0.example", e.to[0])
}

func TestLogCounts_Add(t *testing.T) {
	var c logCounts
	c.add([]byte("Dec 04 21:41:48 testbed postfix/discard[10]: 4Xa: to=<a@b>, relay=none, delay=1, status=sent (discarded)\n" +
		"Dec 04 21:41:48 testbed postfix/qmgr[9]: 4Xa: rem"))
	assert.Equal(t, 1, c.sent)
	assert.Zero(t, c.removed, "a partial line is not counted")
	c.add([]byte("oved\nDec 04 21:41:48 testbed postfix/smtp[11]: 4Xb: to=<c@d>, relay=x, status=deferred (timeout)\n" +
		"Dec 04 21:41:48 testbed postfix/smtp[11]: 4Xc: to=<c@d>, relay=x, status=bounced (5.0.0)\n" +
		"Dec 04 21:41:48 testbed postfix/cleanup[12]: 4Xd: removed\n"))
	assert.Equal(t, 1, c.removed, "only qmgr lines count as removals")
	assert.Equal(t, 1, c.deferred)
	assert.Equal(t, 1, c.bounced)
	assert.Empty(t, c.partial)
}
