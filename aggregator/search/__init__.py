"""Full-text search over papers and posts (issue 13): query parsing and the database engines."""
