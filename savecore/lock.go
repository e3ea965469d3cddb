package savecore

import (
	"log/slog"
	"os"
	"time"

	"github.com/dumpkit/dumpkit/blockdev"
)

// lockRoot takes an exclusive flock(2) lock on the dump root directory for
// the save of one crash: choosing its directory, removing temporary files
// of an interrupted save and writing the vmcore. Two savecores saving into
// one root so never remove each other's temporary files or decide on the
// same directory at once; the second waits at most wait. unlock releases
// the lock.
func lockRoot(root string, wait time.Duration, log *slog.Logger) (unlock func(), err error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	if err := blockdev.LockFile(f, root, false, 0); err != nil {
		log.Info("dump root in use by another savecore: waiting", "dir", root, "max_wait", wait.String())
		if err = blockdev.LockFile(f, root, false, wait); err != nil {
			f.Close()
			return nil, err
		}
	}
	return func() { f.Close() }, nil
}
