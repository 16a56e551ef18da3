"""The graph layer: operators as nodes, data dependencies as edges."""

from ._graph import WHOLE_OUTPUT as WHOLE_OUTPUT
from ._graph import Edge as Edge
from ._graph import Graph as Graph
from ._graph import Node as Node
from ._graph import XCSGraph as XCSGraph
