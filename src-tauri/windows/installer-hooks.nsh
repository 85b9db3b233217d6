; NSIS installer hooks (bundle > windows > nsis > installerHooks).
; 守护 Shouhu supports Windows 10 and later only.
!include "WinVer.nsh"

!macro NSIS_HOOK_PREINSTALL
  ${IfNot} ${AtLeastWin10}
    MessageBox MB_OK|MB_ICONSTOP "守护 需要 Windows 10 或更高版本。$\r$\nShouhu requires Windows 10 or later."
    Abort
  ${EndIf}
!macroend
