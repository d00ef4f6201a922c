"""The stream scorer service: raw topics in, scored and dead-letter topics out."""
