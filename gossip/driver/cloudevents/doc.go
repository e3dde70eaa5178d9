// Package cloudevents maps a driver.Message to CloudEvents 1.0 and back, for
// the drivers whose wire is CloudEvents (NATS, Redis): the attribute names,
// metadata as extension attributes, W3C trace context, the escaping of what
// a wire cannot carry, the JSON structured mode, and driver.ErrUnreadable for
// what is not a readable CloudEvent.
//
// A driver keeps only its transport: a Binding says how names and values
// travel on it, Binding.Encode hands each name and value to a func that
// writes a header or a field, and a Decoder reads them back one by one, so
// no map is built per event besides the Message's own metadata.
package cloudevents
