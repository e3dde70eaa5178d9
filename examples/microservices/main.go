// Command microservices is gossip's seed scenario: four services that talk
// only through events.
//
//	UserService ──user_service.user.created──▶ EmailService ──email_service.email.sent──▶ AnalyticsService
//	                                     └───▶ NotificationService
//	                                     └───▶ AnalyticsService (user_service.user.*)
//
// Each service has its own bus. On the default in-process transport they
// share one named broker; with -driver they talk over Redis or NATS, and the
// service code does not change:
//
//	go run ./examples/microservices
//	go run ./examples/microservices -driver redis://127.0.0.1:6379/0
//	go run ./examples/microservices -driver nats://127.0.0.1:4222
//	go run -tags embeddednats ./examples/microservices -driver nats  # an embedded NATS server
//
// The embedded NATS server (-tags embeddednats) and the OTLP exporters of
// -trace (-tags otlp) are built only with their tags: without them the demo
// builds in a fraction of the time.
//
// With -outbox sqlite (or sqlite:///path, or postgres://...) UserService
// writes each user row and its event in one database transaction, and a
// relay publishes the events once they committed (package outbox).
//
// With -service it runs one service per process (see docs/examples.md for
// the durable catch-up demo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gossipbus/gossip/examples/internal/transport"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "microservices:", err)
		os.Exit(1)
	}
}

var services = []string{"user_service", "email_service", "notification_service", "analytics_service"}

func run() error {
	def := os.Getenv("GOSSIP_DRIVER")
	if def == "" {
		def = "memory"
	}
	driverFlag := flag.String("driver", def, `transport: "memory", "nats", "redis", or a URL such as redis://127.0.0.1:6379/0 (env GOSSIP_DRIVER)`)
	service := flag.String("service", "all", "run one service per process: "+strings.Join(services, ", ")+"; or all")
	users := flag.String("users", "alice,bob", "users the user service creates (comma-separated)")
	expect := flag.Int("expect", 0, "with -service: exit after handling this many events (0: run until interrupted)")
	timeout := flag.Duration("timeout", 10*time.Second, "how long to wait for the services to finish their work")
	trace := flag.Bool("trace", false, "trace every event with OpenTelemetry and print the traces as trees at the end")
	verbose := flag.Bool("v", false, "log the bus's own diagnostics")
	outboxFlag := flag.String("outbox", "", `UserService writes users and their events in one transaction through a transactional outbox in this database: "sqlite" (a file in the user cache directory), "sqlite:///path/to/file.db" or "postgres://127.0.0.1:5432/test"`)
	runFlag := flag.String("run", "", "a name for this run, shared by its processes (letters, digits, '-'): the users it creates carry it, and its services handle only its users' events, acknowledging an earlier run's leftovers unseen")
	flag.Parse()

	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dsn, stop, err := transport.Resolve(*driverFlag, "microservices")
	if err != nil {
		return err
	}
	defer stop()

	run := services
	if *service != "all" {
		if !slices.Contains(services, *service) {
			return fmt.Errorf("unknown -service %q (one of %s, all)", *service, strings.Join(services, ", "))
		}
		run = []string{*service}
	}
	var tracer *tracing
	if *trace || *printTraces != "" {
		if tracer, err = startTracing(*service); err != nil || tracer == nil {
			return err // or -print-traces printed them
		}
	}

	out := newOutput()
	buses := map[string]*gossip.EventBus{}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, b := range buses {
			if err := b.Shutdown(ctx); err != nil {
				logger.Error("shutdown", "error", err)
			}
		}
	}()
	if !validRun(*runFlag) {
		return fmt.Errorf("-run %q: letters, digits and '-' only", *runFlag)
	}
	for _, name := range run {
		b, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, Source: name, Logger: logger})
		if err != nil {
			return err
		}
		if *runFlag != "" {
			// Before tracing: another run's events get no span either.
			b.Use(middleware.Filter(ofRun(*runFlag)))
		}
		tracer.install(b, name)
		buses[name] = b
	}

	var store *userStore
	if b := buses["user_service"]; b != nil && *outboxFlag != "" {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		store, err = openUserStore(ctx, *outboxFlag)
		cancel()
		if err != nil {
			return fmt.Errorf("-outbox: %w", err)
		}
		defer func() { _ = store.close() }()
		stopRelay, err := store.startRelay(b, logger)
		if err != nil {
			return err
		}
		defer stopRelay() // before the buses shut down
	}

	// Consumers first, so that they are live before the first event.
	if b := buses["email_service"]; b != nil {
		if err := (&EmailService{bus: b, out: out}).Register(); err != nil {
			return err
		}
	}
	if b := buses["notification_service"]; b != nil {
		if err := (&NotificationService{bus: b, out: out}).Register(); err != nil {
			return err
		}
	}
	if b := buses["analytics_service"]; b != nil {
		if err := (&AnalyticsService{bus: b, out: out}).Register(); err != nil {
			return err
		}
	}
	fmt.Printf("gossip microservices demo on %s (%s)\n", transport.Name(dsn), strings.Join(run, ", "))
	if store != nil {
		fmt.Printf("user_service writes users and their events in one transaction (outbox on %s)\n", store.dialect)
	}

	// User IDs are new on every run, so that a run waits for its own work even
	// when a durable group still holds events of an earlier run.
	names := strings.Split(*users, ",")
	runID := *runFlag
	if runID == "" {
		runID = strings.ToLower(gossip.NewID()[32:])
	}
	ids := make([]string, len(names))
	for i := range names {
		ids[i] = fmt.Sprintf("u%d-%s", i+1, runID)
	}
	if b := buses["user_service"]; b != nil {
		us := &UserService{bus: b, store: store}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		for i, name := range names {
			name = capitalize(strings.TrimSpace(name))
			if err := us.CreateUser(ctx, ids[i], name); err != nil {
				return fmt.Errorf("create user %s: %w", name, err)
			}
			out.did("user_service", "created", ids[i], "created user %s (%s)", ids[i], name)
		}
		if err := us.UpdateUser(ctx, ids[0], map[string]string{"plan": "pro"}); err != nil {
			return err
		}
		out.did("user_service", "updated", ids[0], "updated user %s (plan=pro)", ids[0])
	}

	if *service == "user_service" {
		if store != nil {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			defer cancel()
			if err := store.waitSent(ctx); err != nil {
				return err
			}
		}
		return tracer.finish(buses)
	}
	if *service != "all" {
		if *expect == 0 {
			fmt.Println("running until interrupted (Ctrl-C)")
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			<-sig
			return tracer.finish(buses)
		}
		if err := waitFor(out, *timeout, func() []string {
			if n := out.count(*service); n < *expect {
				return []string{fmt.Sprintf("%s %d/%d", *service, n, *expect)}
			}
			return nil
		}); err != nil {
			return err
		}
		return tracer.finish(buses)
	}

	// What each service has to do for this run's users before the demo is over.
	var want []string
	for _, id := range ids {
		want = append(want, "email_service/welcome/"+id, "notification_service/notified/"+id,
			"analytics_service/created/"+id, "analytics_service/email/"+id)
	}
	want = append(want, "analytics_service/updated/"+ids[0])
	if err := waitFor(out, *timeout, func() (missing []string) {
		for _, w := range want {
			if !out.has(w) {
				missing = append(missing, w)
			}
		}
		return missing
	}); err != nil {
		return err
	}
	return tracer.finish(buses)
}

// waitFor waits until missing reports nothing left to do.
func waitFor(out *output, timeout time.Duration, missing func() []string) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m := missing()
		if len(m) == 0 {
			return nil
		}
		select {
		case <-out.wake:
		case <-deadline.C:
			slices.Sort(m)
			return errors.New("timed out waiting for: " + strings.Join(m, ", "))
		}
	}
}

// ofRun accepts the events about users of run: their user_id ends in
// "-<run>".
func ofRun(run string) middleware.Predicate {
	return func(e *gossip.Event) bool {
		var about struct {
			UserID string `json:"user_id"`
		}
		return e.Decode(&about) == nil && strings.HasSuffix(about.UserID, "-"+run)
	}
}

func validRun(run string) bool {
	for _, c := range run {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
