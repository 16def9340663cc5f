package maillog

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/maillog")

// TestLines_Golden logs one record with every line method and compares the
// postlog datagrams with testdata/maillog/lines.golden.
func TestLines_Golden(t *testing.T) {
	path, conn := listenDatagram(t)
	l, err := New(postlogOptions(path))
	require.NoError(t, err)
	defer l.Close()

	arrival := fixedNow.Add(-(3*time.Minute + 2500*time.Millisecond))
	active := fixedNow.Add(-230 * time.Millisecond)
	steps := []func(){
		func() { l.Opened("4F3A2B1C0D", "sender@example.com", 1623, 2) },
		func() { l.Opened("4F3A2B1C0D", "", 512, 1) },
		func() { l.Opened("4F3A2B1C0D", "john doe@example.com", 512, 1) },
		func() { l.Removed("4F3A2B1C0D") },
		func() { l.Expired("4F3A2B1C0D", "sender@example.com", false) },
		func() { l.Expired("4F3A2B1C0D", "sender@example.com", true) },
		func() { l.SavedCorrupt("4F3A2B1C0D", "active") },
		func() { l.NotifyFailed("4F3A2B1C0D", NotifyBounce) },
		func() { l.NotifyFailed("4F3A2B1C0D", NotifyDelayWarning) },
		func() { l.NotifyFailed("4F3A2B1C0D", NotifyTrace) },
		func() { l.NotifyFailed("4F3A2B1C0D", NotifyVERP) },
		func() { l.SkippedBusy("4F3A2B1C0D") },
		func() { l.TableChanged("hash:/etc/postfix/transport") },
		func() {
			l.RecipientStatus(Delivery{
				QueueID: "4F3A2B1C0D", Recipient: "double-bounce@mail.example.com",
				Relay: "none", DSN: "2.0.0", Status: "sent",
				Reason:  "undeliverable postmaster notification discarded",
				Arrival: arrival, ActiveArrival: active,
			})
		},
		func() {
			l.RecipientStatus(Delivery{
				QueueID: "4F3A2B1C0D", Recipient: "user@example.net", OrigRecipient: "alias@example.com",
				Relay: "none", DSN: "4.3.0", Status: "deferred",
				Reason:  "mail transport unavailable",
				Arrival: arrival, ActiveArrival: active, Now: fixedNow.Add(45 * time.Second),
			})
		},
		func() {
			// orig_to is left out when it equals the recipient, ignoring case.
			l.RecipientStatus(Delivery{
				QueueID: "4F3A2B1C0D", Recipient: "User@example.net", OrigRecipient: "user@EXAMPLE.net",
				Relay: "none", DSN: "4.3.0", Status: "deferred", Reason: "x",
				Arrival: fixedNow.Add(-10 * time.Millisecond),
			})
		},
	}
	var got []string
	for _, step := range steps {
		step()
		got = append(got, readDatagram(t, conn))
	}
	compareGolden(t, "lines.golden", strings.Join(got, "\n")+"\n")
}

func TestLines_InternalAddressForm(t *testing.T) {
	path, conn := listenDatagram(t)
	o := postlogOptions(path)
	o.AddressForm = "internal"
	l, err := New(o)
	require.NoError(t, err)
	defer l.Close()

	l.Opened("4F3A2B1C0D", "john doe@example.com", 512, 1)
	assert.Equal(t, "Mar 05 09:07:03 mail postfix/qmgr[1234]: 4F3A2B1C0D: from=<john doe@example.com>, size=512, nrcpt=1 (queue active)",
		readDatagram(t, conn))
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "maillog", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run the test with -update to create %s", path)
	assert.Equal(t, string(want), got, "output differs from %s", path)
}
