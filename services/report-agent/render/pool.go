package render

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// encoder returns the compact JSON of element i of the list at path (see
// spliceLists), in a buffer that stays valid until its next call. Each
// goroutine encoding a list has its own encoder, so an encoder may keep
// its buffer between calls.
type encoder func(path string, i int) ([]byte, error)

// pool says how the elements of a document's large lists (report.json's
// findings, SARIF's results, OSCAL's observations and findings) are
// encoded and indented: by workers goroutines at once, in batches of batch
// consecutive elements, with at most window batches encoded or being
// encoded ahead of the one being written. A batch is written whole once
// every batch before it is, so the document's bytes do not depend on the
// pool, and the report-agent holds at most window batches of a document,
// never the whole of it.
type pool struct {
	workers, batch, window int
}

// defaultPool encodes on every core the Go scheduler uses, in batches of
// 128 elements (about 400 KB of report.json), two batches in flight per
// worker: one being encoded while the other waits its turn to be written.
func defaultPool() pool {
	n := runtime.GOMAXPROCS(0)
	return pool{workers: n, batch: 128, window: 2 * n}
}

// sequential is the pool that encodes every element on the writing
// goroutine, one at a time: the reference the others must match.
var sequential = pool{workers: 1, batch: 1, window: 1}

// runningEncoders counts the encoding workers started and not yet ended,
// so that a test can check that writeList never returns before its
// workers end.
var runningEncoders atomic.Int64

// writeList writes the n elements of the list at path into in, separated
// by commas, each encoded by an encoder from newEncoder and indented as if
// in had indented it: in has just written the list's opening bracket. The
// first error encoding an element (in the order of the elements) or
// writing to in's writer (left in in.err) ends it; writeList returns only
// after the workers it started have ended.
func (p pool) writeList(in *indenter, path string, n int, newEncoder func() encoder) error {
	if p.workers <= 1 || n <= p.batch {
		encode := newEncoder()
		for i := range n {
			if i > 0 {
				in.write(comma)
			}
			item, err := encode(path, i)
			if err != nil {
				return err
			}
			in.write(item)
			if in.err != nil {
				return in.err
			}
		}
		return nil
	}

	// The elements are written at the depth the first one takes; each
	// worker indents into its batch's buffer from that depth, every
	// element but the list's first preceded by its comma, so that the
	// batches need only be written one after another.
	in.open()
	depth := in.depth
	batches := (n + p.batch - 1) / p.batch
	window := max(1, p.window)
	// Sending a job never blocks: at most window batches are queued or in
	// flight.
	jobs := make(chan *encodeBatch, window)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range min(p.workers, batches) {
		wg.Add(1)
		runningEncoders.Add(1)
		go func() {
			defer wg.Done()
			defer runningEncoders.Add(-1)
			encode := newEncoder()
			for b := range jobs {
				b.encode(encode, path, depth, &stop)
			}
		}()
	}
	defer func() {
		// On an error, the workers abandon their batches at the next
		// element and take no more.
		stop.Store(true)
		close(jobs)
		wg.Wait()
	}()

	queue := make([]*encodeBatch, 0, window)
	next := 0
	for next < n || len(queue) > 0 {
		for len(queue) < window && next < n {
			b := &encodeBatch{lo: next, hi: min(next+p.batch, n), done: make(chan struct{})}
			if buf, ok := batchBuffers.Get().(*[]byte); ok {
				b.out = *buf
			}
			jobs <- b
			queue = append(queue, b)
			next = b.hi
		}
		b := queue[0]
		queue = append(queue[:0], queue[1:]...)
		<-b.done
		if b.err != nil {
			return b.err
		}
		in.writeIndented(b.out)
		if in.err != nil {
			return in.err
		}
		// A buffer grown past maxPooledBuffer by a batch of large elements
		// is left to the collector: the pool keeps only what most batches
		// need, so that it holds no more than window of them at that size.
		if cap(b.out) <= maxPooledBuffer {
			buf := b.out[:0]
			batchBuffers.Put(&buf)
		}
	}
	return nil
}

// maxPooledBuffer bounds the capacity of a buffer kept for later batches,
// and of the room a new buffer is given at once: 4 MiB, some thirty times a
// batch of ordinary findings (about 128 KiB indented).
const maxPooledBuffer = 4 << 20

// batchBuffers holds the buffers of batches written, for the batches of
// the lists and documents that follow: a document's batches are about the
// same size, so after the first few a batch finds a buffer that fits it.
var batchBuffers sync.Pool // of *[]byte

// encodeBatch is the elements lo to hi (exclusive) of a list, encoded and
// indented into out by a worker, which then closes done; err is the first
// error encoding one of them.
type encodeBatch struct {
	lo, hi int
	out    []byte
	err    error
	done   chan struct{}
}

// encode encodes and indents the batch's elements at depth, stopping early
// once stop is set (the writer has given up on the list).
//
// A panic while encoding (a bug) becomes the batch's error, as the RPC's
// recovery would have made it on the handler's goroutine, instead of
// ending the process from a worker's.
func (b *encodeBatch) encode(encode encoder, path string, depth int, stop *atomic.Bool) {
	defer close(b.done)
	defer func() {
		if r := recover(); r != nil {
			b.err = fmt.Errorf("encode %s element: panic: %v", path, r)
		}
	}()
	in := &indenter{out: b.out[:0], depth: depth}
	for i := b.lo; i < b.hi && !stop.Load(); i++ {
		if i > 0 {
			in.write(comma)
		}
		item, err := encode(path, i)
		if err != nil {
			b.err = err
			break
		}
		in.write(item)
		if i == b.lo && cap(b.out) == 0 {
			// A new buffer gets room for the batch at once, taking the
			// first element's size for the others' with a quarter to
			// spare, rather than growing a quarter at a time.
			// At most maxPooledBuffer: a large first element says little
			// about the rest.
			in.out = append(make([]byte, 0, min(len(in.out)*(b.hi-b.lo)*5/4, maxPooledBuffer)), in.out...)
		}
	}
	b.out = in.out
}

// comma separates the elements of a list.
var comma = []byte{','}
