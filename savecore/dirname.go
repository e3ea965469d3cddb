package savecore

import (
	"time"
)

// Host is the address savecore puts in dump directory names and passes to
// the scripts: diskdump always saves locally, and the names follow the
// netdump-server convention (doc/FORMAT.md §9.2).
const Host = "127.0.0.1"

// dirTimeLayout is %Y-%m-%d-%H:%M (doc/FORMAT.md §9.2).
const dirTimeLayout = "2006-01-02-15:04"

// DirName returns the name of the dump directory for a crash at t:
// "127.0.0.1-%Y-%m-%d-%H:%M" in loc, or in local time when loc is nil.
func DirName(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	return Host + "-" + t.In(loc).Format(dirTimeLayout)
}
