package install

import (
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeb_PackageAvoidsPostfixFiles builds the Debian package and checks
// its files, hard link, dependency and maintainer scripts, and that it
// ships no path that a file of the installed postfix package has.
func TestDeb_PackageAvoidsPostfixFiles(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	bin := binary(t)
	out, status := runScript(t, "", "deb.sh", "-b", bin, "-v", "1.2.3", "-o", t.TempDir())
	require.Equal(t, 0, status, "deb.sh: %s", out)
	deb := strings.TrimSpace(out)
	require.FileExists(t, deb)

	listing, err := exec.Command("dpkg-deb", "-c", deb).Output()
	require.NoError(t, err)
	files := map[string]string{} // path without the leading "." to its tar mode column
	for line := range strings.Lines(string(listing)) {
		fields := strings.Fields(line)
		require.GreaterOrEqual(t, len(fields), 6, "dpkg-deb -c line %q", line)
		path := strings.TrimPrefix(fields[5], ".")
		if !strings.HasSuffix(path, "/") {
			files[path] = fields[0]
		}
	}
	want := []string{
		"/usr/lib/postfix/sbin/oqmgr-go/oqmgr",
		"/usr/lib/postfix/sbin/oqmgr-go/qmgr",
		"/usr/sbin/oqmgr-go-switch",
		"/usr/share/man/man8/oqmgr-go.8.gz",
		"/usr/share/doc/oqmgr-go/copyright",
	}
	assert.ElementsMatch(t, want, slices.Collect(maps.Keys(files)), "files in the package")
	assert.Contains(t, string(listing), "link to ./usr/lib/postfix/sbin/oqmgr-go/", "qmgr and oqmgr are one file")
	assert.Equal(t, "-rwxr-xr-x", files["/usr/sbin/oqmgr-go-switch"], "mode of the switch command")

	postfixFiles, err := exec.Command("dpkg-query", "-L", "postfix").Output()
	if err != nil {
		t.Skip("postfix package not installed")
	}
	for path := range strings.Lines(string(postfixFiles)) {
		path = strings.TrimSpace(path)
		if info, err := os.Stat(path); err == nil && info.IsDir() {
			continue
		}
		assert.NotContains(t, files, path, "the postfix package owns this file")
	}

	fields, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version", "Depends").Output()
	require.NoError(t, err)
	assert.Equal(t, "Package: oqmgr-go\nVersion: 1.2.3\nDepends: postfix (>= 3.7)\n", string(fields))
	control, err := exec.Command("dpkg-deb", "-I", deb).Output()
	require.NoError(t, err)
	assert.Contains(t, string(control), " prerm ", "prerm switches the default instance off on removal")
	assert.Contains(t, string(control), " postrm ", "postrm removes the saved copies on purge")
}
