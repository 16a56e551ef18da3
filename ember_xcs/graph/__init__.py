"""The graph layer: operators as nodes, data dependencies as edges."""

from ._graph import WHOLE_OUTPUT as WHOLE_OUTPUT
from ._graph import Edge as Edge
from ._graph import Graph as Graph
from ._graph import Node as Node
from ._graph import XCSGraph as XCSGraph
from ._mappings import MatchingFields as MatchingFields
from ._mappings import identity_mapping as identity_mapping
from ._mappings import prefix_mapping as prefix_mapping
from ._passes import PassReport as PassReport
from ._passes import is_pure as is_pure
from ._passes import optimized_graph as optimized_graph
from ._passes import requested_outputs as requested_outputs
