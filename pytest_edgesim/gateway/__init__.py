"""The project's gateway: one logic (:mod:`.logic`, queue, processing delay, aggregation) and
its configuration (:mod:`.config`), hosted in three ways: in process in virtual time
(:mod:`.model`), as a lockstep node in a container (:mod:`.lockstep_node`), and as a real
MQTT client (:mod:`.service`, started by ``python -m pytest_edgesim.gateway``)."""
