// Package attrib owns the attribution history: which private address held
// which ports of which public address, and when. It keeps the intervals of
// block assignments (pool blocks per configuration generation, default-SNAT
// blocks with their times, instance mappings) in an embedded, durable
// bbolt store and answers "who held public address A, port P, at time T?"
// for abuse reports (GET /v1/attribution, natgw ctl who).
//
// Store implements natlog.BlockSink. Its Block method runs on the
// management core and only puts the event on a bounded queue; a writer
// goroutine of the store's own, on the management side and never on a
// worker, applies queued events in batches, one bbolt transaction (one
// fsync) per batch. A full queue drops the event, counts it and logs it;
// an event whose transaction committed is on disk. Lookups run on the
// HTTP server's goroutines in bbolt read transactions, concurrently with
// the writer.
//
// The store's layout, its recovery after a crash, retention and the size
// bound are described at the top of store.go.
package attrib
