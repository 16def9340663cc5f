package queue

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type warningCase struct {
	name     string
	id       ID
	build    func(b *Builder)
	warnings []string
	check    func(t *testing.T, m *Message)
}

func baseBuilder() Builder {
	return Builder{
		Arrival:    time.Unix(1796418825, 203704),
		Sender:     "alice@example",
		Recipients: []BuildRecipient{{Address: "a@dest.example"}},
		Content:    []string{"Subject: test", "", "body"},
	}
}

// The expected warnings were checked against the C oqmgr of Postfix
// 3.7.11, which logged them for these files and then went on to deliver.
var warningCases = []warningCase{
	{
		name: "second original recipient", id: "WARN01",
		build: func(b *Builder) {
			// A bare O record, then a recipient with its own O record.
			b.Recipients = []BuildRecipient{
				{Type: RecOrigRcpt, Address: "first@dest.example"},
				{Address: "a@dest.example", OrigAddress: "old@dest.example"},
			}
		},
		warnings: []string{"WARN01: ignoring out-of-order original recipient <first@dest.example>"},
		check: func(t *testing.T, m *Message) {
			require.Len(t, m.Recipients, 1)
			assert.Equal(t, "old@dest.example", m.Recipients[0].OrigAddress)
		},
	},
	{
		name: "malformed notify flags", id: "WARN02",
		build: func(b *Builder) {
			b.Recipients = []BuildRecipient{{Address: "a@dest.example", Notify: 3}}
		},
		warnings: []string{"WARN02: ignoring malformed DSN notify flags <3>"},
		check: func(t *testing.T, m *Message) {
			require.Len(t, m.Recipients, 1)
			assert.Equal(t, 0, m.Recipients[0].Notify)
		},
	},
	{
		name: "repeated sasl attributes", id: "WARN03",
		build: func(b *Builder) {
			b.ClientAttrs = []string{"sasl_method=PLAIN", "sasl_username=u1", "sasl_method=LOGIN", "log_ident=X1", "log_ident=X2"}
		},
		warnings: []string{
			"WARN03: ignoring multiple sasl_method attribute: LOGIN",
			"WARN03: ignoring multiple log_ident attribute: X2",
		},
		check: func(t *testing.T, m *Message) {
			assert.Equal(t, "PLAIN", m.SASLMethod)
			assert.Equal(t, "u1", m.SASLUsername)
			assert.Equal(t, "X1", m.LogIdent)
		},
	},
	{
		name: "bad and good verp", id: "WARN04",
		build: func(b *Builder) {
			b.VERP = "+x"
			b.ClientAttrs = []string{"ret_flags=7", "envelope_id=E1"}
			b.ExtractedAttrs = []string{"encoding=8bit"}
		},
		warnings: []string{
			"WARN04: ignoring malformed DSN RET flags in queue file record:7",
			"WARN04: ignoring bad VERP request: \"+x\"",
		},
		check: func(t *testing.T, m *Message) {
			assert.Equal(t, "", m.VERP)
			assert.Equal(t, 0, m.RetFlags)
			assert.Equal(t, "E1", m.EnvelopeID)
			assert.Equal(t, "8bit", m.Encoding)
		},
	},
	{
		name: "verp for null sender", id: "WARN05",
		build: func(b *Builder) {
			b.Sender = ""
			b.VERP = "+="
		},
		warnings: []string{"WARN05: ignoring VERP request for null sender"},
		check: func(t *testing.T, m *Message) {
			assert.True(t, m.HasSender)
			assert.Equal(t, "", m.Sender)
			assert.Equal(t, "", m.VERP)
		},
	},
	{
		name: "orphan original recipient at end", id: "WARN06",
		build: func(b *Builder) {
			b.ExtractedRecipients = []BuildRecipient{{Type: RecOrigRcpt, Address: "orphan@dest.example"}}
			b.ExtractedAttrs = []string{"dsn_orig_rcpt=rfc822;orphan@dest.example"}
		},
		warnings: []string{
			"WARN06: ignoring out-of-order DSN original recipient <rfc822;orphan@dest.example>",
			"WARN06: ignoring out-of-order original recipient <orphan@dest.example>",
		},
	},
}

func TestRead_Warnings(t *testing.T) {
	for _, tc := range warningCases {
		t.Run(tc.name, func(t *testing.T) {
			b := baseBuilder()
			tc.build(&b)
			f := writeTemp(t, b.Bytes())

			m, err := Read(f, tc.id, "active/"+string(tc.id), 0)

			require.NoError(t, err)
			assert.Equal(t, tc.warnings, m.Warnings)
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

// TestDumpWarningFiles writes the files of TestRead_Warnings to
// $QUEUE_WARNING_DIR, to feed them to a real Postfix queue manager.
func TestDumpWarningFiles(t *testing.T) {
	dir := os.Getenv("QUEUE_WARNING_DIR")
	if dir == "" {
		t.Skip("QUEUE_WARNING_DIR not set")
	}
	for _, tc := range warningCases {
		b := baseBuilder()
		tc.build(&b)
		require.NoError(t, b.WriteFile(filepath.Join(dir, string(tc.id))))
	}
}
