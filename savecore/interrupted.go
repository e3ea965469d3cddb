package savecore

import (
	"log/slog"

	"github.com/dumpkit/dumpkit/diskdump"
)

// logBeyond says how many pages of an interrupted dump were recovered past
// the header's written_blocks, which savecore reads as a hint for a dump
// that is not final (doc/FORMAT.md §13 item 17): what the header alone
// would have lost.
func logBeyond(log *slog.Logger, dev string, st diskdump.Stats) {
	if st.BeyondWritten == 0 {
		return
	}
	log.Warn("{pages} pages recovered past the header's written_blocks: {why}", "device", dev,
		"pages", st.BeyondWritten, "why", st.BeyondWhy)
}
