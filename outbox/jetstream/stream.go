package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/cortexerp/datalayer/internal/secret"
)

// DefaultDuplicates is the duplicate window [EnsureStream] gives a stream
// that names none. It should cover the longest time from a delivery to its
// redelivery: a relay down that long, plus the retry backoff. NATS's own
// default, two minutes, is short for that.
const DefaultDuplicates = time.Hour

// EnsureStream creates the stream cfg describes, or updates an existing one
// of that name to cfg, and returns it. A zero cfg.Duplicates becomes
// [DefaultDuplicates], or cfg.MaxAge when that is shorter (JetStream
// refuses a window longer than the stream keeps messages).
func EnsureStream(ctx context.Context, js natsjs.JetStream, cfg natsjs.StreamConfig) (natsjs.Stream, error) {
	var errs []error
	if js == nil {
		errs = append(errs, errors.New("jetstream must not be nil"))
	}
	if cfg.Name == "" {
		errs = append(errs, errors.New("stream name must not be empty"))
	}
	if len(cfg.Subjects) == 0 {
		errs = append(errs, errors.New("stream needs at least one subject (such as \"order.>\")"))
	}
	if cfg.Duplicates < 0 {
		errs = append(errs, fmt.Errorf("duplicate window %v must not be negative", cfg.Duplicates))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ensure stream %q: %w", cfg.Name, err)
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = DefaultDuplicates
		if cfg.MaxAge > 0 && cfg.MaxAge < cfg.Duplicates {
			cfg.Duplicates = cfg.MaxAge
		}
	}
	st, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, secret.Error(fmt.Errorf("ensure stream %q: %w", cfg.Name, err))
	}
	return st, nil
}
