"""The rules of data fields: which parameters define one, and of which type (GetDataFields)."""

from __future__ import annotations

from typing import Final

from auxia.decision.model import data_field_pb2
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision._errors import invalid_field
from auxia_decision.server._storage.seam import ProjectRecord, Repository

# The type of a metric, by the aggregation that computes it.
_TYPE_BY_AGGREGATION: Final = {
    "daily_count_aggregation": "INTEGER",
    "first_timestamp_aggregation": "TIMESTAMP_SECONDS",
    "latest_timestamp_aggregation": "TIMESTAMP_SECONDS",
    "days_since_first_timestamp_aggregation": "INTEGER",
    "days_since_last_timestamp_aggregation": "INTEGER",
}
DATA_FIELD_TYPES: Final = frozenset({"INTEGER", "DOUBLE", "BOOLEAN", "STRING", "TIMESTAMP_SECONDS"})
"""The types a data field can have (``ResolvedDataFieldPb.data_field_type``)."""


def data_field_type_of(
    repository: Repository, project_id: str, params: data_field_pb2.DataFieldParams, path: str
) -> str:
    """Return the type of the data field that parameters define, checking them.

    ``path`` is the JSON path of the parameters, for the errors.
    """
    kind = params.WhichOneof("params")
    if kind == "user_attribute_data_field_params":
        name = params.user_attribute_data_field_params.property_name
        found = repository.user_attribute_type(project_id, name)
        if found is None:
            raise invalid_field(
                f"{path}.userAttributeDataFieldParams.propertyName",
                f'the project has no user attribute "{name}"',
            )
        return found
    metric = (
        params.treatment_data_field_params
        if kind == "treatment_data_field_params"
        else params.event_data_field_params
    )
    # The aggregation's oneof and its window's form are field rules, checked by validation.
    aggregation = metric.WhichOneof("aggregation")
    assert aggregation is not None
    return _TYPE_BY_AGGREGATION[aggregation]


def get_data_fields(
    repository: Repository, project: ProjectRecord, request: management.GetDataFieldsByParamsRequest
) -> management.GetDataFieldsByParamsResponse:
    """Resolve each data field's parameters to its identifier and type, in request order."""
    response = management.GetDataFieldsByParamsResponse()
    for index, params in enumerate(request.data_field_params):
        path = f"dataFieldParams[{index}]"
        field_type = data_field_type_of(repository, project.project_id, params, path)
        data_field_id = repository.resolve_data_field(project.project_id, params, field_type)
        response.data_fields.add(
            data_field_id=data_field_id,
            data_field_params=params,
            data_field_type=field_type,
        )
    return response
