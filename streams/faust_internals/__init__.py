"""Every touch of faust-streaming's (and aiokafka's) internals, in one package, for the pinned
version (a test checks it): the batch consumer (``consumer``) and the private state the worker
reads or sets (``probes``). Nothing else names a private attribute of theirs."""

from streams.faust_internals.consumer import (
    PINNED_FAUST,
    BatchConsumer,
    BatchConsumerThread,
    BatchTransport,
    FetchedBatch,
    count_revocation,
    is_stale,
    keep_through_resumes,
    set_commit_metadata,
    use_batch_consumer,
)
from streams.faust_internals.probes import (
    committed_metadata,
    committed_offsets,
    last_poll,
    partition_count,
    partition_report,
    set_current_event,
    set_table_serializers,
    worker_class,
)

__all__ = ["PINNED_FAUST", "BatchConsumer", "BatchConsumerThread", "BatchTransport",
           "FetchedBatch", "committed_metadata", "committed_offsets", "count_revocation",
           "is_stale", "keep_through_resumes", "last_poll", "partition_count",
           "partition_report", "set_commit_metadata", "set_current_event",
           "set_table_serializers", "use_batch_consumer", "worker_class"]
