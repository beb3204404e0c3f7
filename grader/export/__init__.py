"""Export formats: each reads a GradeReport (or many) and writes one format; none lives on the models."""
