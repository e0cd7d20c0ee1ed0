"""Ingest: turning one uploaded file into a dataset item that is ready, or rejected with why.

``check.check_file`` is the single-file entry point: ``formats`` sniffs what the bytes are and
holds the name to that, then ``image`` decodes a still or ``video`` probes a clip; both return
``facts.MediaFacts`` (with a thumbnail) or raise ``facts.Rejected`` with a reason for the
person. ``zip`` reads an uploaded archive safely and ``archive`` turns its entries into items;
``buckets`` plans the bucket preview from the sizes ingest recorded. The jobs themselves live
in ``jobs/datasets.py``.
"""
