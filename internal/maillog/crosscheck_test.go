package maillog

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const postfixLibDir = "/usr/lib/postfix"

// TestCrossCheck_LibPostfix compares FormatDelay and FormatAddress with
// format_tv and quote_822_local from the installed Postfix libraries, on
// fixed and random inputs. It needs a C compiler and the Debian postfix
// package, and is skipped without them.
func TestCrossCheck_LibPostfix(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a C program")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed")
	}
	for _, lib := range []string{"libpostfix-util.so", "libpostfix-global.so"} {
		if _, err := os.Stat(filepath.Join(postfixLibDir, lib)); err != nil {
			t.Skipf("%s is not installed", lib)
		}
	}
	harness := filepath.Join(t.TempDir(), "harness")
	out, err := exec.Command(gcc, "-o", harness, filepath.Join("testdata", "libpostfix", "harness.c"),
		"-L"+postfixLibDir, "-lpostfix-global", "-lpostfix-util", "-Wl,-rpath,"+postfixLibDir).CombinedOutput()
	require.NoError(t, err, "compile harness: %s", out)

	rng := rand.New(rand.NewPCG(1, 2))
	var input strings.Builder
	var want []string

	var delays []time.Duration
	for _, d := range []time.Duration{0, 1, 4999, 5000, 9999, 10000, 99999, 995000, 999999, 1_000_000, 9_950_000, 9_949_999, 10_000_000, 99_500_000} {
		delays = append(delays, d*time.Microsecond)
	}
	for range 3000 {
		// Spread the values from microseconds to days.
		scale := time.Duration(1) << rng.IntN(40)
		delays = append(delays, time.Duration(rng.Int64N(int64(scale)))*time.Microsecond)
	}
	for _, d := range delays {
		for res := 0; res <= 6; res++ {
			sec, usec := int64(d/time.Second), int64(d%time.Second/time.Microsecond)
			fmt.Fprintf(&input, "T%d %d %d\n", sec, usec, res)
			want = append(want, FormatDelay(d, res))
		}
	}

	addresses := []string{
		"user@example.com", "foo bar@example.com", "a..b@x", ".a@x", "a.@x", "a@b@c", `q"uote@x`,
		`back\slash@x`, "@r1,@r2:foo bar@x", "@r1:user@x", "@x", "jöran@x", "no-domain", "a(b)c",
		"semi;colon@x", "x\x7fy@z", "x\ty@z", "x\ry@z",
	}
	const alphabet = "abz.@ \"\\()<>,;:[]\r\t\x01\x7f\xc3\xa9-+_"
	for range 3000 {
		b := make([]byte, 1+rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		addresses = append(addresses, string(b))
	}
	for _, a := range addresses {
		if a == "" {
			continue
		}
		input.WriteString("Q" + a + "\n")
		want = append(want, FormatAddress(a))
	}

	cmd := exec.Command(harness)
	cmd.Stdin = strings.NewReader(input.String())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	require.NoError(t, err)

	// Split on LF only: some results end in CR, which bufio.ScanLines drops.
	inputs := strings.Split(strings.TrimSuffix(input.String(), "\n"), "\n")
	got := strings.Split(strings.TrimSuffix(string(stdout), "\n"), "\n")
	require.Len(t, got, len(want), "one harness output line per input line")
	mismatches := 0
	for i := range got {
		if got[i] != want[i] {
			mismatches++
			if mismatches <= 20 {
				t.Errorf("input %q: Postfix gives %q, Go gives %q", inputs[i], got[i], want[i])
			}
		}
	}
	assert.Zero(t, mismatches, "results that differ from Postfix")
}
