package daemon

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
)

// startTree starts the builder of this instance's log's Merkle tree: it
// checks the stored tree (a corrupt one stops start-up, naming the log and
// the seq), then extends it and stores checkpoints every
// LedgerCheckpointInterval while entries arrive.
func (d *Daemon) startTree(ctx context.Context, reg prometheus.Registerer) error {
	ts, ok := d.store.(interface {
		sinks.Store
		sinks.TreeStore
	})
	if !ok {
		return fmt.Errorf("the audit store %s keeps no Merkle tree", d.cfg.Store)
	}
	var signer note.Signer
	if d.cfg.LedgerSigningKeyFile != "" {
		var err error
		if signer, err = ledgertree.LoadSigner(d.cfg.LedgerSigningKeyFile); err != nil {
			return fmt.Errorf("AUDITBUS_LEDGER_SIGNING_KEY_FILE: %w", err)
		}
		d.log.Info("ledger checkpoints signed", "log", d.cfg.LedgerLog, "key", signer.Name(), "interval", d.cfg.LedgerCheckpointInterval.String())
	} else {
		d.log.Warn("ledger checkpoints are unsigned: AUDITBUS_LEDGER_SIGNING_KEY_FILE is not set, so auditbus verify cannot trust them; make a key with auditbus keygen",
			"log", d.cfg.LedgerLog)
	}
	var size, at atomic.Int64
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "auditbus_ledger_checkpoint_size", Help: "Entries the latest checkpoint of this instance's ledger log commits to.",
		}, func() float64 { return float64(size.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "auditbus_ledger_checkpoint_age_seconds", Help: "Time since the latest checkpoint of this instance's ledger log (0 before the first).",
		}, func() float64 {
			if t := at.Load(); t > 0 {
				return time.Since(time.Unix(0, t)).Seconds()
			}
			return 0
		}),
	)
	b, err := ledgertree.StartBuilder(ctx, ledgertree.BuilderOptions{
		Store: ts, Log: d.cfg.LedgerLog, Signer: signer, Interval: d.cfg.LedgerCheckpointInterval, Logger: d.log,
		Checkpointed: func(n uint64, t time.Time) {
			size.Store(int64(n))
			at.Store(t.UnixNano())
		},
	})
	if err != nil {
		return &runtimeError{fmt.Errorf("the audit store's ledger (AUDITBUS_LEDGER_LOG %s): %w", d.cfg.LedgerLog, err)}
	}
	d.tree = b
	return nil
}
