package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// QmgrBinaryEnv names an environment variable that, when set, gives the
// path of a prebuilt queue manager for tests to run instead of a fresh
// build of cmd/oqmgr.
const QmgrBinaryEnv = "OQMGR_BINARY"

var (
	buildOnce  sync.Once
	builtPath  string
	buildError error
)

// OurQmgr returns the path of our queue manager for a test: the binary
// named by $OQMGR_BINARY, or else cmd/oqmgr built once per test process
// into a temporary directory. The test fails if the build fails.
func OurQmgr(t TB) string {
	t.Helper()
	if path := os.Getenv(QmgrBinaryEnv); path != "" {
		return path
	}
	buildOnce.Do(func() {
		removeStaleBuilds(time.Hour)
		dir, err := os.MkdirTemp("", "oqmgr-test-bin-")
		if err != nil {
			buildError = fmt.Errorf("build oqmgr-go/cmd/oqmgr: %w", err)
			return
		}
		builtPath = filepath.Join(dir, "oqmgr")
		out, err := exec.Command("go", "build", "-o", builtPath, "oqmgr-go/cmd/oqmgr").CombinedOutput()
		if err != nil {
			buildError = fmt.Errorf("go build oqmgr-go/cmd/oqmgr: %w\n%s", err, out)
		}
	})
	if buildError != nil {
		t.Fatalf("%v", buildError)
	}
	return builtPath
}

// removeStaleBuilds deletes the binaries that earlier test processes built
// and left behind, once they are older than age. A test process cannot
// remove its own build, because other tests of it may still run the file.
func removeStaleBuilds(age time.Duration) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "oqmgr-test-bin-*"))
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err == nil && time.Since(info.ModTime()) > age {
			os.RemoveAll(dir)
		}
	}
}
