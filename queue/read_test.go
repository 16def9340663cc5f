package queue

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/real")

// Queue files written by cleanup(8) of Postfix 3.7.11 in a private
// instance without a queue manager, and what each one exercises.
var realFiles = []struct {
	id    ID
	about string
}{
	{"34B96984C21", "sendmail -N -R -V, virtual alias expansion, always_bcc, W record"},
	{"358DF98434E", "sendmail with the null sender, so no W record"},
	{"1FC73984219", "SMTP with DSN ORCPT/NOTIFY/RET/ENVID, log_client attributes, header_checks FILTER"},
	{"20904984212", "SMTP with header_checks REDIRECT"},
	{"4jh4Jt4J3cz1SCKb", "long queue id, SMTPUTF8, five recipients"},
}

func openFixture(t *testing.T, id ID) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata/real", string(id)))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func TestRead_RealFilesGolden(t *testing.T) {
	for _, rf := range realFiles {
		t.Run(string(rf.id), func(t *testing.T) {
			f := openFixture(t, rf.id)

			m, err := Read(f, rf.id, "active/"+string(rf.id), 0)
			require.NoError(t, err, rf.about)

			m.Arrival, m.CreateTime = m.Arrival.UTC(), m.CreateTime.UTC()
			got, err := json.MarshalIndent(m, "", "  ")
			require.NoError(t, err)
			golden := filepath.Join("testdata/real", string(rf.id)+".golden.json")
			if *update {
				require.NoError(t, os.WriteFile(golden, append(got, '\n'), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(got), rf.about)

			// Every recipient offset names an R record in the file.
			for _, r := range m.Recipients {
				assert.Equal(t, byte(RecRcpt), readByteAt(t, f, r.Offset), "recipient %s", r.Address)
			}
		})
	}
}

func TestRead_RealFileFields(t *testing.T) {
	m, err := Read(openFixture(t, "1FC73984219"), "1FC73984219", "active/1FC73984219", 0)
	require.NoError(t, err)

	assert.Equal(t, time.Unix(1796419495, 129613000), m.Arrival)
	assert.Equal(t, "bob@example", m.Sender)
	assert.Equal(t, int64(1206), m.DataSize)
	assert.Equal(t, 5, m.RcptCount)
	assert.Equal(t, "smtp:[127.0.0.1]:10025", m.Filter)
	assert.Equal(t, RetFull, m.RetFlags)
	assert.Equal(t, "env-smtp-1", m.EnvelopeID)
	assert.Equal(t, "localhost", m.LogClientName)
	assert.Equal(t, "127.0.0.1", m.LogClientAddress)
	assert.Equal(t, "local", m.RewriteContext)
	require.Len(t, m.Recipients, 5)
	assert.Equal(t, Recipient{
		Address: "e@dest.example", OrigAddress: "e@dest.example",
		DSNOrig: "rfc822;orig-e@dest.example", Notify: NotifyFailure | NotifyDelay, Offset: 718,
	}, m.Recipients[0])
	assert.Equal(t, "archive@dest.example", m.Recipients[4].Address, "extracted recipient comes last")
}

// A Builder given the envelope of a real file writes that file byte for
// byte, so the Builder's layout is the one cleanup(8) writes.
func TestBuilder_MatchesRealFile(t *testing.T) {
	real, err := os.ReadFile("testdata/real/34B96984C21")
	require.NoError(t, err)
	notify := NotifyFailure | NotifyDelay
	b := Builder{
		Arrival:       time.Unix(1796418825, 203704000),
		CreateTime:    time.Unix(1796419430, 0),
		EnvelopeAttrs: []string{"envelope_id=envid-123", "ret_flags=2", "rewrite_context=local"},
		FullName:      "root",
		Sender:        "alice@example",
		WarnTime:      1796433225,
		Recipients: []BuildRecipient{
			{Address: "a@dest.example", OrigAddress: "list@example.net", DSNOrig: "rfc822;list@example.net", Notify: notify},
			{Address: "b@dest.example", OrigAddress: "list@example.net", DSNOrig: "rfc822;list@example.net", Notify: notify},
			{Address: "c@dest.example", OrigAddress: "c@dest.example", DSNOrig: "rfc822;c@dest.example", Notify: notify | NotifySuccess},
		},
		Content: []string{
			"Received: by capture.example (Postfix, from userid 0)",
			"\tid 34B96984C21; Fri,  4 Dec 2026 21:13:45 +0000 (UTC)",
			"Subject: hello",
			"From: alice@example",
			"Message-Id: <20261204212350.34B96984C21@capture.example>",
			"Date: Fri,  4 Dec 2026 21:13:45 +0000 (UTC)",
			"",
			"Line one",
			"Line two with a longer body text.",
		},
		ExtractedRecipients: []BuildRecipient{
			{Address: "archive@dest.example", OrigAddress: "archive@dest.example", Notify: NotifyNever},
		},
	}

	got := b.Bytes()

	assert.Equal(t, string(real), string(got))
}

func TestBuilder_PostcatAccepts(t *testing.T) {
	postcat, err := exec.LookPath("postcat")
	if err != nil {
		postcat = "/usr/sbin/postcat"
	}
	if _, err := os.Stat(postcat); err != nil {
		t.Skip("postcat is not installed")
	}
	b := baseBuilder()
	b.ClientAttrs = []string{"log_client_name=client.example", "trace_flags=1024"}
	b.WarnTime = 1796433225
	b.ExtractedRecipients = []BuildRecipient{{Address: "x@dest.example"}}
	b.AppendedRecipients = []BuildRecipient{{Address: "appended@dest.example", Notify: NotifyNever}}
	path := filepath.Join(t.TempDir(), "3B2A41C0D7F")
	require.NoError(t, b.WriteFile(path))

	out, err := exec.Command(postcat, "-e", path).CombinedOutput()
	require.NoError(t, err, "postcat output:\n%s", out)
	text := string(out)
	assert.Contains(t, text, "sender: alice@example")
	assert.Contains(t, text, "recipient: a@dest.example")
	assert.Contains(t, text, "recipient: x@dest.example")
	assert.Contains(t, text, "recipient: appended@dest.example", "postcat follows the pointer records")
	assert.Contains(t, text, "*** MESSAGE FILE END")
	assert.NotContains(t, text, "warning:")
}

func TestRead_AppendedRecipientsViaPointer(t *testing.T) {
	b := baseBuilder()
	b.AppendedRecipients = []BuildRecipient{{Address: "m1@dest.example"}, {Address: "m2@dest.example", Notify: NotifySuccess}}
	b.ExtractedRecipients = []BuildRecipient{{Address: "x@dest.example"}}
	file := b.Bytes()
	f := writeTemp(t, file)

	m, err := Read(f, "3B2A41C0D7F", "active/3B2A41C0D7F", 0)
	require.NoError(t, err)

	assert.Equal(t, []string{"a@dest.example", "m1@dest.example", "m2@dest.example", "x@dest.example"}, addresses(m))
	assert.Equal(t, NotifySuccess, m.Recipients[2].Notify)
	for _, r := range m.Recipients {
		assert.Equal(t, byte(RecRcpt), file[r.Offset], "recipient %s", r.Address)
	}
}

func TestRead_SkipsFinishedRecipients(t *testing.T) {
	b := baseBuilder()
	b.Recipients = []BuildRecipient{
		{Address: "done@dest.example", OrigAddress: "o1@dest.example", Notify: NotifySuccess, Type: RecDone},
		{Address: "dropped@dest.example", OrigAddress: "o2@dest.example", Type: RecDropRcpt},
		{Address: "todo@dest.example"},
	}
	f := writeTemp(t, b.Bytes())

	m, err := Read(f, "3B2A41C0D7F", "active/3B2A41C0D7F", 0)
	require.NoError(t, err)

	require.Equal(t, []string{"todo@dest.example"}, addresses(m))
	assert.Equal(t, Recipient{Address: "todo@dest.example", Offset: m.Recipients[0].Offset}, m.Recipients[0],
		"O and notify records of a finished recipient do not carry over")
	assert.Empty(t, m.Warnings)
}

func TestRead_RecipientLimit(t *testing.T) {
	envelope := []BuildRecipient{{Address: "e1@x"}, {Address: "e2@x"}, {Address: "e3@x"}}
	extracted := []BuildRecipient{{Address: "x1@x"}, {Address: "x2@x"}}
	tests := []struct {
		name    string
		mixed   bool
		limit   int
		batches [][]string
	}{
		{"no limit", false, 0, [][]string{{"e1@x", "e2@x", "e3@x", "x1@x", "x2@x"}}},
		{"limit two", false, 2, [][]string{{"e1@x", "e2@x"}, {"e3@x", "x1@x"}, {"x2@x"}}},
		{"limit two mixed", true, 2, [][]string{{"e1@x", "e2@x"}, {"e3@x", "x1@x"}, {"x2@x"}}},
		{"limit one", false, 1, [][]string{{"e1@x"}, {"e2@x"}, {"e3@x"}, {"x1@x"}, {"x2@x"}, nil}},
		{"limit equals count", false, 5, [][]string{{"e1@x", "e2@x", "e3@x", "x1@x", "x2@x"}, nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := baseBuilder()
			b.Recipients, b.ExtractedRecipients, b.Mixed = envelope, extracted, tc.mixed
			b.ExtractedAttrs = []string{"encoding=8bit"}
			f := writeTemp(t, b.Bytes())

			m, err := Read(f, "3B2A41C0D7F", "active/3B2A41C0D7F", tc.limit)
			require.NoError(t, err)
			assert.Equal(t, "8bit", m.Encoding, "the extracted segment is read even when the limit is hit early")

			var batches [][]string
			batches = append(batches, addresses(m))
			for m.NextRecipientOffset != 0 {
				require.Less(t, len(batches), 10, "ReadMore does not terminate")
				require.NoError(t, ReadMore(f, m, tc.limit))
				batches = append(batches, addresses(m))
			}
			assert.Equal(t, tc.batches, batches)
		})
	}
}

func TestUpdates_InPlace(t *testing.T) {
	b := baseBuilder()
	b.Recipients = []BuildRecipient{{Address: "a@dest.example"}, {Address: "b@dest.example"}}
	b.WarnTime = 1796433225
	b.ClientAttrs = []string{"trace_flags=1024"}
	f := writeTemp(t, b.Bytes())
	m, err := Read(f, "3B2A41C0D7F", "active/3B2A41C0D7F", 0)
	require.NoError(t, err)
	require.Equal(t, TraceRecord, m.TraceFlags)
	require.NotZero(t, m.TraceFlagsOffset)
	require.Equal(t, int64(1796433225), m.WarnTime)

	require.NoError(t, MarkDone(f, m.Recipients[0].Offset))
	require.NoError(t, SetWarnTime(f, m.WarnOffset, -1))
	require.NoError(t, HideRecord(f, m.TraceFlagsOffset))

	again, err := Read(f, "3B2A41C0D7F", "active/3B2A41C0D7F", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"b@dest.example"}, addresses(again))
	assert.Equal(t, int64(-1), again.WarnTime)
	assert.Equal(t, m.WarnOffset, again.WarnOffset)
	assert.Equal(t, 0, again.TraceFlags)
	info, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, int64(len(b.Bytes())), info.Size(), "updates keep the file size")

	assert.Error(t, SetWarnTime(f, m.WarnOffset, 1234567890123456), "a value wider than 15 characters")
}

func TestRead_TraceFlagsMasked(t *testing.T) {
	b := baseBuilder()
	b.ClientAttrs = []string{"trace_flags=1", "trace_flags=1792"}
	f := writeTemp(t, b.Bytes())

	m, err := Read(f, "3B2A41C0D7F", "active/3B2A41C0D7F", 0)
	require.NoError(t, err)
	assert.Equal(t, TraceMTAVerify|TraceUserVerify|TraceRecord, m.TraceFlags,
		"a value without known bits does not count as the first")
	assert.Zero(t, m.TraceFlagsOffset, "only a record-only value is remembered for hiding")
}

func TestRead_LegacyClientAttributes(t *testing.T) {
	tests := []struct {
		name  string
		attrs []string
		want  string
	}{
		{"legacy only", []string{"client_name=old.example"}, "old.example"},
		{"log attribute wins", []string{"client_name=old.example", "log_client_name=new.example"}, "new.example"},
		{"legacy after log ignored", []string{"log_client_address=1.2.3.4", "client_name=old.example"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := baseBuilder()
			b.ClientAttrs = tc.attrs
			m, err := Read(writeTemp(t, b.Bytes()), "3B2A41C0D7F", "active/3B2A41C0D7F", 0)
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.LogClientName)
		})
	}
}

func TestFileError_Text(t *testing.T) {
	b := baseBuilder()
	file := b.Bytes()
	f := writeTemp(t, file[:len(file)-2])

	_, err := Read(f, "3B2A41C0D7F", "active/3B2A41C0D7F", 0)

	var fileErr *FileError
	require.ErrorAs(t, err, &fileErr)
	assert.Equal(t, "3B2A41C0D7F: message rejected: missing end record", fileErr.LogText())
	assert.True(t, strings.HasPrefix(err.Error(), "queue 3B2A41C0D7F: read active/3B2A41C0D7F: "), err.Error())
	assert.ErrorContains(t, err, "missing end record")
}

func addresses(m *Message) []string {
	var out []string
	for _, r := range m.Recipients {
		out = append(out, r.Address)
	}
	return out
}

func readByteAt(t *testing.T, f *os.File, offset int64) byte {
	t.Helper()
	buf := make([]byte, 1)
	_, err := f.ReadAt(buf, offset)
	require.NoError(t, err, fmt.Sprintf("read at %d", offset))
	return buf[0]
}
