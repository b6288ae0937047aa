package ledgertree_test

import (
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
)

// A log's tree over its entries, and the checkpoint body that commits to
// it.
func ExampleTree() {
	t := ledgertree.NewTree()
	for seq := uint64(1); seq <= 3; seq++ {
		en := sinks.Entry{Log: "node-1", Seq: seq, Time: time.Unix(1767225600, 0), Kind: sinks.KindReceived,
			Source: "urn:shop", ID: fmt.Sprint("order-", seq), Transport: "http", Principal: "alice"}
		if err := t.Append(ledgertree.LeafHash(&en)); err != nil {
			panic(err)
		}
	}
	fmt.Printf("%s", ledgertree.Checkpoint("node-1", t.Size(), t.Root()))
	// Output:
	// node-1
	// 3
	// dL5GSXT3Sk/DFUO1+iqVfwPSRMzKh1QpoMhZ3i+MvtA=
}
