package diskdump

import "fmt"

// Page is one page recovered from a dump partition. The Page and its Data
// handed out by Partition.Pages are reused: they are valid only until the
// next step of the iteration (copy what must outlive it).
type Page struct {
	PFN        uint64
	Off        int64  // byte offset of the data on the partition
	Data       []byte // as stored: raw page (len B) or zlib stream; valid until the next step of the iteration
	Compressed bool   // data is a zlib stream (record flag bit0)
	PageFlags  uint64 // record page_flags (0 for raw dumps)
	Flags      uint32 // record flags (bit0 COMPRESSED, bit1 MAPPING_ANON); 0 for raw dumps

	blockSize int // page size of the dump; 0 for a Page built by the caller
}

// PageSize is the size of the page once decompressed: the dump's block
// size for pages from Partition.Pages.
func (pg *Page) PageSize() int { return pg.blockSize }

// Decompress returns the B-byte page, reusing dst's storage when it is large
// enough. Raw pages are copied. A zlib stream must inflate to exactly B
// bytes with a valid Adler-32 trailer; anything else is a *PageError
// wrapping ErrCorrupt. B is the dump's block size; for a Page the caller
// built itself it is len(dst) if non-zero, else len(Data) for raw pages and
// 4096 for compressed ones. Decompress is safe for concurrent use on
// distinct Pages (copies of a yielded Page with their own Data).
func (pg *Page) Decompress(dst []byte) ([]byte, error) {
	bs := pg.blockSize
	if bs <= 0 {
		switch {
		case len(dst) > 0:
			bs = len(dst)
		case !pg.Compressed:
			bs = len(pg.Data)
		default:
			bs = 4096
		}
	}
	if cap(dst) < bs {
		dst = make([]byte, bs)
	}
	dst = dst[:bs]
	if !pg.Compressed {
		if len(pg.Data) != bs {
			return nil, &PageError{PFN: pg.PFN, Off: pg.Off, Err: fmt.Errorf("diskdump: raw page of %d bytes, page size is %d: %w", len(pg.Data), bs, ErrCorrupt)}
		}
		copy(dst, pg.Data)
		return dst, nil
	}
	if err := Inflate(dst, pg.Data); err != nil {
		return nil, &PageError{PFN: pg.PFN, Off: pg.Off, Err: err}
	}
	return dst, nil
}
