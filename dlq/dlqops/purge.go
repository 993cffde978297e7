package dlqops

import (
	"context"
	"fmt"

	"github.com/invoke-worker/worker/dlq"
)

// PurgeOptions select the records to delete.
type PurgeOptions struct {
	// Filter selects the records; without Filter.Seqs, All must be set.
	Filter Filter
	All    bool
	// DryRun selects and reports, and deletes nothing.
	DryRun bool
	// OnPlan is called once, before anything is deleted (and before
	// Confirm), with the selected records (without Header and History).
	OnPlan func(selected []dlq.Record)
	// Confirm, when set, is called with the selected records before any is
	// deleted; false deletes nothing and Purge returns ErrNotConfirmed. Not
	// called on a dry run or when nothing matched.
	Confirm func(selected []dlq.Record) bool
	// OnDelete is called after each record, with nil or the delete's
	// error.
	OnDelete func(r dlq.Record, err error)
}

// Validate reports the first unusable field.
func (o PurgeOptions) Validate() error { return validateSelection(o.Filter, o.All) }

// PurgeResult sums a purge up.
type PurgeResult struct {
	DryRun   bool
	Selected int
	Deleted  int
	Failed   int
}

// Purge deletes the records the filter selects: exactly those listed when
// it started (and confirmed), never a record stored after. Each delete
// stands alone, so a cancelled purge leaves the rest in place.
func (s *Store) Purge(ctx context.Context, o PurgeOptions) (PurgeResult, error) {
	res := PurgeResult{DryRun: o.DryRun}
	if err := o.Validate(); err != nil {
		return res, err
	}
	records, err := s.selection(ctx, o.Filter)
	if err != nil {
		return res, err
	}
	res.Selected = len(records)
	if o.OnPlan != nil {
		o.OnPlan(records)
	}
	if o.DryRun || len(records) == 0 {
		return res, nil
	}
	if o.Confirm != nil && !o.Confirm(records) {
		return res, ErrNotConfirmed
	}
	for _, r := range records {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("purge interrupted after %d of %d records: %w", res.Deleted+res.Failed, res.Selected, err)
		}
		err := s.deleteRecord(ctx, r.Seq)
		if err != nil {
			res.Failed++
		} else {
			res.Deleted++
		}
		if o.OnDelete != nil {
			o.OnDelete(r, err)
		}
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%w: %d of %d records not deleted", ErrIncomplete, res.Failed, res.Selected)
	}
	return res, nil
}
