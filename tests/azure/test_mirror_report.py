"""The mirror report on Azure ML: absent, said plainly (Azure discards the mirror's answers), nothing sent."""

import pytest
from byom.cli.main import main
from byom.core.entities import Endpoint
from byom.core.errors import Unsupported


def test_the_mirror_report_says_what_azure_lacks_and_sends_nothing(ws, cli, service, capsys) -> None:
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    assert "mirror-reports" not in ws.info().capabilities
    calls = len(service.calls)
    with pytest.raises(Unsupported) as raised:
        ws.mirror_report("ep1")
    assert "discard" in raised.value.message and "local workspace" in raised.value.hint
    assert len(service.calls) == calls, "nothing is sent to Azure"
    assert main(["online-endpoint", "mirror-report", "-n", "ep1", *cli]) == 2
    err = capsys.readouterr().err
    assert "Azure ML" in err and "discard its answers" in err, err
