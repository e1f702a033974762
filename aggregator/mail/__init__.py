"""The weekly email: :mod:`.compose` builds a reader's week (best items grouped by topic
filter, rising terms), :mod:`.render` turns it into a ``multipart/alternative`` message from
Jinja2 templates, :mod:`.send` delivers due emails over SMTP exactly once per reader and ISO
week, and :mod:`.tokens` signs the 👍/👎 and one-click unsubscribe links."""
