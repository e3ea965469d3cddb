package savecore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dsnet/golib/unitconv"
)

// MinFreeFile is the file in the dump root that holds, in KiB, the space
// to keep free on its filesystem, as FreeBSD's savecore reads it.
const MinFreeFile = "minfree"

// maxMinFreeBytes bounds what ReadMinFree reads: the file holds one number.
const maxMinFreeBytes = 4096

// ParseMinFree parses an amount of space to keep free: a plain number is
// KiB (as in DIR/minfree); a number with an IEC suffix (512Mi, 1Gi, 2GiB)
// is that many bytes.
func ParseMinFree(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt64/1024 {
			return 0, fmt.Errorf("savecore: minfree %q out of range", s)
		}
		return n * 1024, nil
	}
	v, err := unitconv.ParsePrefix(strings.TrimSuffix(s, "B"), unitconv.IEC)
	if err != nil || v < 0 || v >= math.MaxInt64 || !strings.HasSuffix(strings.TrimSuffix(s, "B"), "i") {
		return 0, fmt.Errorf("savecore: minfree %q: want KiB, or a size such as 512Mi", s)
	}
	return int64(v), nil
}

// ReadMinFree reads DIR/minfree: the KiB to keep free. A missing file is 0.
func ReadMinFree(root string) (int64, error) {
	f, err := os.Open(filepath.Join(root, MinFreeFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMinFreeBytes))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/1024 {
		return 0, fmt.Errorf("savecore: %s: %q is not a number of KiB", f.Name(), s)
	}
	return n * 1024, nil
}

// reserve is the space the save must leave free: Options.MinFree, else
// DIR/minfree. An unreadable DIR/minfree is logged and counts as 0: a
// broken limit must not cost the dump.
func (o *Options) reserve(log *slog.Logger) int64 {
	if o.MinFree > 0 {
		log.Info("keeping {minfree} free on the dump filesystem (MINFREE)", "minfree", iec(float64(o.MinFree))+"B")
		return o.MinFree
	}
	n, err := ReadMinFree(o.root())
	if err != nil {
		log.Warn("ignoring the minfree file ({err}): no space is kept free; write a number of KiB into it", "err", err)
		return 0
	}
	if n > 0 {
		log.Info("keeping {minfree} free on the dump filesystem ({file})", "minfree", iec(float64(n))+"B",
			"file", filepath.Join(o.root(), MinFreeFile))
	}
	return n
}
