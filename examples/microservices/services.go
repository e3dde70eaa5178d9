package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

// output prints what the services do, one line at a time, and records the
// work done so that main can wait for it on a signal instead of sleeping.
type output struct {
	mu   sync.Mutex
	done map[string]int  // lines per service
	work map[string]bool // "service/what/user id"
	wake chan struct{}
}

func newOutput() *output {
	return &output{done: map[string]int{}, work: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// did prints a line for service and records that it did what for userID.
func (o *output) did(service, what, userID, format string, args ...any) {
	o.mu.Lock()
	fmt.Printf("%-22s %s\n", "["+service+"]", fmt.Sprintf(format, args...))
	o.done[service]++
	o.work[service+"/"+what+"/"+userID] = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *output) has(work string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.work[work]
}

func (o *output) count(service string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done[service]
}

// UserService registers users and publishes what happened to them. With a
// store (-outbox) it writes each user row and its event in one database
// transaction, and the store's relay publishes the event after the commit.
type UserService struct {
	bus   *gossip.EventBus
	store *userStore
}

func (s *UserService) CreateUser(ctx context.Context, id, name string) error {
	u := UserCreatedEvent{UserID: id, Name: name, Email: strings.ToLower(name) + "@example.com"}
	e := gossip.NewEvent(UserCreated, u)
	if s.store != nil {
		// A user's events go out in the order they were written.
		return s.store.createUser(ctx, e.WithMetadata(outbox.KeyMetadata, id), u)
	}
	return s.bus.Publish(ctx, e)
}

func (s *UserService) UpdateUser(ctx context.Context, id string, fields map[string]string) error {
	u := UserUpdatedEvent{UserID: id, Fields: fields}
	e := gossip.NewEvent(UserUpdated, u)
	if s.store != nil {
		return s.store.updateUser(ctx, e.WithMetadata(outbox.KeyMetadata, id), u)
	}
	return s.bus.Publish(ctx, e)
}

// EmailService sends the welcome mail and tells the others it did.
type EmailService struct {
	bus *gossip.EventBus
	out *output
}

func (s *EmailService) Register() error {
	_, err := s.bus.Subscribe(UserCreated, gossip.Typed(s.onUserCreated), gossip.Group("email_service"))
	return err
}

func (s *EmailService) onUserCreated(ctx context.Context, e *gossip.Event, u UserCreatedEvent) error {
	s.out.did("email_service", "welcome", u.UserID, "welcome email sent to %s <%s>", u.Name, u.Email)
	// Chain the next event with the handler's ctx, so tracing sees one trace.
	return s.bus.Publish(ctx, gossip.NewEvent(EmailSent, EmailSentEvent{
		UserID: u.UserID, To: u.Email, Template: "welcome",
	}))
}

// NotificationService reacts to the same event as EmailService, in its own
// group: every group gets every event.
type NotificationService struct {
	bus *gossip.EventBus
	out *output
}

func (s *NotificationService) Register() error {
	_, err := s.bus.Subscribe(UserCreated, gossip.Typed(
		func(ctx context.Context, e *gossip.Event, u UserCreatedEvent) error {
			s.out.did("notification_service", "notified", u.UserID, "push notification: %s just joined", u.Name)
			return nil
		}), gossip.Group("notification_service"))
	return err
}

// AnalyticsService tracks users created and updated and emails sent: one
// handler for a pattern, one for another service's event.
type AnalyticsService struct {
	bus *gossip.EventBus
	out *output
}

func (s *AnalyticsService) Register() error {
	if _, err := s.bus.Subscribe("user_service.user.*", s.onUser, gossip.Group("analytics_service")); err != nil {
		return err
	}
	_, err := s.bus.Subscribe(EmailSent, gossip.Typed(
		func(ctx context.Context, e *gossip.Event, m EmailSentEvent) error {
			s.out.did("analytics_service", "email", m.UserID, "tracked %s: %s email to %s", e.Type, m.Template, m.To)
			return nil
		}), gossip.Group("analytics_service"))
	return err
}

// onUser handles several event types; it decodes by type.
func (s *AnalyticsService) onUser(ctx context.Context, e *gossip.Event) error {
	switch e.Type {
	case UserCreated:
		var u UserCreatedEvent
		if err := e.Decode(&u); err != nil {
			return err
		}
		s.out.did("analytics_service", "created", u.UserID, "tracked %s: user %s (%s)", e.Type, u.UserID, u.Name)
	case UserUpdated:
		var u UserUpdatedEvent
		if err := e.Decode(&u); err != nil {
			return err
		}
		s.out.did("analytics_service", "updated", u.UserID, "tracked %s: user %s changed %d field(s)", e.Type, u.UserID, len(u.Fields))
	}
	return nil
}
