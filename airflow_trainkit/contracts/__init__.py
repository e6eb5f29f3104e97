"""Data contracts: a YAML file a data owner can read, compiled to a Great Expectations 1.x suite.

Import the parts you need from their modules (``model``, ``compile``, ``engine``, ``infer``); this
package imports nothing heavy, so a DAG may import it at parse time.
"""
