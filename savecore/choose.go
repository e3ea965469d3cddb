package savecore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
)

// maxDirSuffix bounds the names tried for one crash: NAME, NAME.1, ...
const maxDirSuffix = 99

// dirUse says what an existing dump directory holds.
type dirUse int

const (
	dirFree  dirUse = iota // absent, empty, or only what an interrupted save left
	dirSame                // a vmcore of the same crash, described by its dump-id
	dirOther               // anything else: another crash, or files we cannot attribute
)

// classifyDir looks at the dump directory path for the crash id.
func classifyDir(path string, id dumpID) (dirUse, dumpID, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return dirFree, dumpID{}, nil
	}
	if err != nil {
		return dirOther, dumpID{}, err
	}
	if !fi.IsDir() {
		return dirOther, dumpID{}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return dirOther, dumpID{}, err
	}
	var vmcore, other bool
	for _, e := range ents {
		switch {
		case e.Name() == VmcoreName:
			vmcore = true
		case e.Name() == DumpIDName || e.Name() == DmesgName || e.Name() == InfoName || isStaleTemp(e.Name()):
		default:
			other = true
		}
	}
	old, ok, err := readDumpID(path)
	switch {
	case err != nil || (ok && !old.sameCrash(id)):
		return dirOther, old, nil
	case ok && vmcore:
		return dirSame, old, nil
	case ok || (!vmcore && !other):
		// The dump-id of this crash without its vmcore (a save cut
		// before the rename), or nothing at all.
		return dirFree, old, nil
	}
	return dirOther, old, nil
}

// chooseDir picks the dump directory of a crash whose directory name is
// base: the first of base, base.1, base.2, ... that is free or holds this
// crash. A name holding another crash, or a vmcore without a dump-id
// (saved by an older savecore: nothing says which crash it is), is never
// written into. same is set, with the saved copy's description, when the
// directory already holds a vmcore of this crash.
func chooseDir(root, base string, id dumpID, log *slog.Logger) (d *dumpDir, old *dumpID, err error) {
	for i := 0; i <= maxDirSuffix; i++ {
		name := base
		if i > 0 {
			name = base + "." + strconv.Itoa(i)
		}
		use, prev, err := classifyDir(filepath.Join(root, name), id)
		if err != nil {
			return nil, nil, err
		}
		if use == dirOther {
			log.Info("dump directory holds another crash (or files savecore did not write): trying the next name",
				"dir", filepath.Join(root, name))
			continue
		}
		d, err := prepareDir(root, name, true, log)
		if err != nil {
			return nil, nil, err
		}
		if use == dirSame {
			return d, &prev, nil
		}
		return d, nil, nil
	}
	return nil, nil, fmt.Errorf("savecore: %s: %s and %d more names hold other crashes: %w", root, base, maxDirSuffix, ErrDirExists)
}
