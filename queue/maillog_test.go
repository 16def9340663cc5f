package queue

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// capturedMessage is what the C oqmgr logged while reading one file.
type capturedMessage struct {
	active     bool     // it logged the "(queue active)" line
	activeLine string   // sender, size and nrcpt of that line, as "from=<%s>, size=%d, nrcpt=%d"
	warnings   []string // warning texts, without "warning: "
}

var (
	savingCorrupt = regexp.MustCompile(`^saving corrupt file "(\w+)" from queue "active" to queue "corrupt"$`)
	queueActive   = regexp.MustCompile(`^(\w+): from=<(.*)>, size=(\d+), nrcpt=(\d+) \(queue active\)$`)
)

// readCapturedLog groups the lines of a mail log written by the C oqmgr
// of Postfix 3.7.11 by queue file. A file's lines start with its "(queue
// active)" line or its first warning and end before the next file's
// "(queue active)" line or with the "saving corrupt file" line.
func readCapturedLog(t *testing.T, path string) map[ID]*capturedMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)

	byID := map[ID]*capturedMessage{}
	current := &capturedMessage{}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		line := scanner.Text()
		_, text, ok := strings.Cut(line, "]: ")
		require.True(t, ok, "unexpected log line %q", line)

		if match := queueActive.FindStringSubmatch(text); match != nil {
			current = &capturedMessage{active: true, activeLine: "from=<" + match[2] + ">, size=" + match[3] + ", nrcpt=" + match[4]}
			byID[ID(match[1])] = current
			continue
		}
		warning, ok := strings.CutPrefix(text, "warning: ")
		require.True(t, ok, "unexpected log line %q", line)
		if match := savingCorrupt.FindStringSubmatch(warning); match != nil {
			byID[ID(match[1])] = current
			current = &capturedMessage{}
			continue
		}
		current.warnings = append(current.warnings, warning)
	}
	require.NoError(t, scanner.Err())
	return byID
}

func TestRead_MatchesCapturedDamageLog(t *testing.T) {
	captured := readCapturedLog(t, "testdata/oqmgr-damaged.maillog")
	base, err := os.ReadFile(damageBase)
	require.NoError(t, err)

	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			want, ok := captured[tc.id]
			require.True(t, ok, "no captured log lines for %s", tc.id)
			f := writeTemp(t, tc.damage(t, bytes.Clone(base)))

			m, err := Read(f, tc.id, "active/"+string(tc.id), 0)

			var fileErr *FileError
			require.ErrorAs(t, err, &fileErr)
			assert.Equal(t, want.warnings, append(m.Warnings, fileErr.Lines...))
			assert.Equal(t, want.active, m.HasSender, "whether the queue active line was logged")
			if want.active {
				assert.Equal(t, want.activeLine, activeLine(m))
			}
		})
	}
}

func TestRead_MatchesCapturedWarningLog(t *testing.T) {
	captured := readCapturedLog(t, "testdata/oqmgr-warnings.maillog")

	for _, tc := range warningCases {
		t.Run(tc.name, func(t *testing.T) {
			want, ok := captured[tc.id]
			require.True(t, ok, "no captured log lines for %s", tc.id)
			b := baseBuilder()
			tc.build(&b)
			f := writeTemp(t, b.Bytes())

			m, err := Read(f, tc.id, "active/"+string(tc.id), 0)

			require.NoError(t, err)
			assert.Equal(t, want.warnings, m.Warnings)
			require.True(t, want.active)
			assert.Equal(t, want.activeLine, activeLine(m))
		})
	}
}

// activeLine renders the fields of the "(queue active)" line. The sender
// of these files needs none of the quoting Postfix applies to addresses.
func activeLine(m *Message) string {
	return fmt.Sprintf("from=<%s>, size=%d, nrcpt=%d", m.Sender, m.DataSize, m.RcptCount)
}
