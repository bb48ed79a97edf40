"""The send path (docs/sending.md): the scheduler turns due enrollments into queued messages and
batched send jobs; the pipeline runs the pre-send checks, composes and delivers each batch."""
