// Package savecore saves crash dumps from diskdump partitions at boot: it is
// the library behind cmd/savecore (doc/FORMAT.md §9).
//
// For every device it is given, in order, savecore reads the dump header
// (diskdump.OpenPartition), picks the dump directory
// DIR/127.0.0.1-%Y-%m-%d-%H:%M from the crash time (local time, doc/FORMAT.md §9.2),
// checks the free space (running DIR/scripts/diskdump-nospace when it is
// short), streams the vmcore into that directory through renameio, fsyncs the
// file, the dump directory and the dump root, and only then, with
// Options.Delete, invalidates the dump on the partition
// (diskdump.InvalidateDump), rewrites the format signatures of the blocks
// the kernel samples before its next dump (diskdump.FormatNormal with the
// module's block_order and sample_rate; not on swap partitions, whose
// block 1 is only zeroed) and flushes the device. After a save it runs
// DIR/scripts/diskdump-success.
//
// When the kernel fell back to a second device in the middle of a dump, two
// devices hold copies of the same crash: the most complete copy is saved once
// and, with Options.Delete, both are erased. A dump-id file beside each
// vmcore identifies its crash, so that a later save of the same crash
// replaces the vmcore only with a copy of more pages (else "already
// saved", and the dump is erased), and another crash of the same minute
// goes to NAME.1, NAME.2, ...
//
// Each device is locked (blockdev.OpenLocked) while it is read or written,
// and the dump root while a crash is saved into it; another savecore or
// dumpformat waits at most Options.LockWait. After the erase the blocks the
// kernel samples are valid for the device size, the module's total_blocks
// and the saved dump's, which is recorded in block 2 (doc/FORMAT.md §3.3);
// under -D a device without a dump whose sampled blocks are invalid (an
// erase cut short) is repaired.
//
// Nothing named "vmcore" exists until the file is complete and synced: an
// interrupted run leaves only renameio's temporary ".vmcore<random>" file,
// which the next run removes. A dump is never erased unless its vmcore is
// durable.
//
// Around the save: each vmcore gets an info file beside it (WriteInfo, Info);
// Options.MinFree or DIR/minfree is space the save leaves free
// (ParseMinFree, ReadMinFree); Options.MaxDumps removes the oldest dump
// directories savecore wrote after a save (PruneDumps, ParseDirName); and
// Check reports the dumps waiting without touching them (savecore --check).
//
// Before each vmcore, the kernel log of the dump is written beside it as
// vmcore-dmesg.txt (package dmesg; symbols from the VMCOREINFO in the dump
// or a checked System.map, Options.SystemMap); WriteDmesg prints the log of
// a partition or vmcore (savecore --dmesg). Options.DumpLevel and
// Options.Compress make smaller vmcores in the same pass. A device that
// starts with makedumpfile's flattened stream (a kdump raw target) is
// saved too (doc/FLATTENED.md), and a kdump.conf can be the CONFIG
// (ParseKdumpConf).
//
// The package does its OS access through os, renameio and blockdev only, and
// takes io.ReaderAt/io.WriterAt devices, so tests run it on in-memory images
// as well as on loop devices. It logs to an optional *slog.Logger and never
// prints.
package savecore
