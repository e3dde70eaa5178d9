package outbox_test

import (
	"database/sql/driver"
	"errors"
)

// fakeDriver is a database/sql driver the outbox does not know.
type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return nil, errors.New("fake: no connections") }
